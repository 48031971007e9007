// The restore point index in a repository: a push writes each segment's record
// (what it holds of restore points), and none for other WAL files; a record
// counts only for the content its name gives (one a killed push left, for
// content never stored, says nothing); a missing or damaged record makes restore
// read that segment; expire's list of records to remove holds those of the
// segments it removes, and only those. Recovery's archive-get checks a segment
// against the XXH3-128 in its record, and against its SHA-256 when they differ.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fetchWalFile, pushWalFile } from '../../src/repo/archive-store.js';
import { xxh128Hex } from '../../src/storage/filter/xxh128.js';
import { sha256 } from '../../src/repo/wal-digest.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { openRestorePointIndex, restorePointEntriesOf } from '../../src/repo/restore-point-index.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import type { WriteOptions } from '../../src/storage/storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { SEG, WalBuilder, filler, restorePoint } from '../helpers/wal-builder.js';

/** A posix store that keeps the paths written, in order. */
class RecordingStorage extends PosixStorage {
  writes: string[] = [];
  override async write(path: string, source: Buffer | AsyncIterable<Buffer> | Readable, opts?: WriteOptions): Promise<void> {
    await super.write(path, source, opts);
    this.writes.push(path);
  }
}

test('a push writes each segment\'s record; restore trusts a record only for its content, and reads a segment whose record is missing or damaged', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-rpindex-'));
  try {
    const storage = new RecordingStorage(root);
    const repo = repositoryOn(storage, root);
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: '7', pg_major: 16, wal_segment_size: SEG });
    const w = new WalBuilder(0n, 3);
    w.add(filler(100));
    const point = w.add(restorePoint('before_upgrade', Date.UTC(2026, 11, 5)));
    while (w.next() < BigInt(2 * SEG + 100)) w.add(filler(3000));
    w.closePages();
    const names = [0, 1].map((i) => segmentFileName(1, BigInt(i), SEG));
    for (const [i, name] of names.entries()) await pushWalFile(repo, info, name, w.segment(i), { compression: 'none' });
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'), { compression: 'none' });
    const sub = `main/restore-points/${names[0]!.slice(0, 16)}`;
    const records = storage.writes.filter((p) => p.startsWith('main/restore-points/')).sort();
    assert.deepEqual(records, names.map((n, i) => `${sub}/${n}-${sha256(w.segment(i))}.json`), 'each segment, and nothing else');

    const warnings: string[] = [];
    const index = openRestorePointIndex(repo, 'main', (l) => warnings.push(l));
    const entry = await index.entry(names[0]!, sha256(w.segment(0)));
    assert.deepEqual(entry?.points.map((p) => [p.name, p.lsn, p.timeMs]), [['before_upgrade', point, Date.UTC(2026, 11, 5)]]);
    assert.deepEqual(await index.entry(names[1]!, sha256(w.segment(1))), { points: [], crosses: false, ends: false });
    assert.equal(await index.entry(names[0]!, 'f'.repeat(64)), undefined, 'a record of other content says nothing of this one: read it');
    assert.equal(await index.entry(segmentFileName(1, 2n, SEG), 'a'.repeat(64)), undefined, 'no record: read it');

    // A damaged record: the segment is read instead (undefined), with a warning.
    const dir = join(root, sub);
    const damaged = `${names[1]}-${sha256(w.segment(1))}.json`;
    writeFileSync(join(dir, damaged), '{"segment": "');
    const again = openRestorePointIndex(repo, 'main', (l) => warnings.push(l));
    assert.equal(await again.entry(names[1]!, sha256(w.segment(1))), undefined);
    assert.match(warnings.join('\n'), new RegExp(`restore point index record .*${damaged} could not be read .*: segment ${names[1]} is read instead`));

    // Expire removes the records of the segments it removes, of whatever content, and only those.
    writeFileSync(join(dir, `${names[1]}-${'f'.repeat(64)}.json`), '{}');
    const doomed = await restorePointEntriesOf(repo, 'main', (segment) => segment === names[1]);
    assert.deepEqual(doomed.paths.sort(), [`${sub}/${damaged}`, `${sub}/${names[1]}-${'f'.repeat(64)}.json`].sort());
    assert.deepEqual(doomed.dirs, [sub]);
    assert.equal(readdirSync(dir).length, 3);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('recovery checks a fetched segment against the XXH3-128 its push recorded; a record that does not match means its SHA-256, and damage is refused either way', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-rpdigest-'));
  try {
    const repo = repositoryOn(new PosixStorage(root), root);
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: '7', pg_major: 16, wal_segment_size: SEG });
    const w = new WalBuilder(0n, 3);
    while (w.next() < BigInt(SEG + 100)) w.add(filler(3000));
    w.closePages();
    const name = segmentFileName(1, 0n, SEG);
    const content = w.segment(0);
    await pushWalFile(repo, info, name, content, { compression: 'none' });
    const real = sha256(content);
    const recordDir = join(root, 'main', 'restore-points', name.slice(0, 16));
    const record = JSON.parse(readFileSync(join(recordDir, `${name}-${real}.json`), 'utf8')) as { xxh128: string };
    assert.equal(record.xxh128, xxh128Hex(content));
    assert.deepEqual(await fetchWalFile(repo, 'main', name, null, true), content);

    // The record is what decides: the segment stored under another SHA-256, with a record for that
    // one, is taken by recovery (its content matches the record) and refused by everything else.
    const stored = readdirSync(join(root, 'main', 'archive'), { recursive: true }).map(String).find((p) => p.endsWith(`${name}-${real}`))!;
    const fake = 'e'.repeat(64);
    renameSync(join(root, 'main', 'archive', stored), join(root, 'main', 'archive', stored.replace(real, fake)));
    writeFileSync(join(recordDir, `${name}-${fake}.json`), JSON.stringify({ segment: name, sha256: fake, points: [], crosses: false, ends: false, xxh128: record.xxh128 }));
    assert.deepEqual(await fetchWalFile(repo, 'main', name, null, true), content);
    await assert.rejects(fetchWalFile(repo, 'main', name, null), /fails its checksum/);
    renameSync(join(root, 'main', 'archive', stored.replace(real, fake)), join(root, 'main', 'archive', stored));

    // A record that does not match (damaged itself): the SHA-256 decides, and the segment is fine.
    writeFileSync(join(recordDir, `${name}-${real}.json`), JSON.stringify({ ...record, xxh128: '0'.repeat(32) }));
    assert.deepEqual(await fetchWalFile(repo, 'main', name, null, true), content);
    // A damaged segment with its record intact: refused.
    writeFileSync(join(recordDir, `${name}-${real}.json`), JSON.stringify(record));
    const damaged = Buffer.from(content);
    damaged[5000] ^= 1;
    writeFileSync(join(root, 'main', 'archive', stored), damaged);
    await assert.rejects(fetchWalFile(repo, 'main', name, null, true), /fails its checksum/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
