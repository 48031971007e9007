// A backup set's manifest text made in chunks is the text made whole: the same bytes
// JSON.stringify gives, behind the SHA-256 of that JSON, for a manifest of many files
// (many chunks) with paths that are not ASCII, and it reads back.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { manifestChunks, serializeManifest } from '../../src/repo/backup-set/manifest-text.js';
import { parseManifest } from '../../src/repo/backup-set/manifest.js';
import type { BackupSetManifest, ManifestFile } from '../../src/repo/backup-set/manifest.js';

function manifest(files: number, format_version: 3 | 4): BackupSetManifest {
  const list: ManifestFile[] = [];
  for (let i = 0; i < files; i++) {
    list.push({
      path: i % 7 === 0 ? `base/5/tbl_é€😀_${i}` : `base/5/${16384 + i}`, size: i * 3, mode: 0o600, mtime: 1_800_000_000 + i,
      xxh128: i.toString(16).padStart(32, '0'), crc32c: (i & 0xffff).toString(16).padStart(8, '0'),
      stored: i % 2 === 0 ? { bundle: i >> 8, offset: i * 8, length: 8 } : { object: `data/base/5/${16384 + i}` },
    });
  }
  return {
    format: 'pgpitr-backup-manifest', format_version, backup_id: '20261207-000000F', compression: 'none',
    directories: [{ path: 'base', mode: 0o700 }, { path: 'base/5', mode: 0o700 }], files: list,
    tablespaces: [{ oid: 16500, location: '/srv/ts "one"' }], server_manifest: null,
  };
}

test('format 4: the chunks are the SHA-256 of JSON.stringify, then that JSON without its "{", then a newline', () => {
  for (const n of [0, 1, 3000]) {
    const m = manifest(n, 4);
    const chunks = [...manifestChunks(m)];
    if (n === 3000) assert.ok(chunks.length > 3, `${chunks.length} chunks`);
    const body = JSON.stringify(m);
    const want = `{"manifest_sha256":"${createHash('sha256').update(body).digest('hex')}",${body.slice(1)}\n`;
    assert.equal(Buffer.concat(chunks).toString(), want);
    assert.deepEqual(serializeManifest(m), Buffer.from(want));
    assert.deepEqual(parseManifest(serializeManifest(m), 'm'), m);
  }
});

test('format 3 has no checksum: JSON.stringify and a newline', () => {
  const m = manifest(500, 3);
  assert.equal(serializeManifest(m).toString(), JSON.stringify(m) + '\n');
});

test('what JSON.stringify leaves out or writes as null, the chunks do too', () => {
  const m = { ...manifest(2, 4), extra: undefined, files: [...manifest(2, 4).files, undefined] } as unknown as BackupSetManifest;
  const body = JSON.stringify(m);
  assert.equal(Buffer.concat([...manifestChunks(m)]).toString(), `{"manifest_sha256":"${createHash('sha256').update(body).digest('hex')}",${body.slice(1)}\n`);
});
