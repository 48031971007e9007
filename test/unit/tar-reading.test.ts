// A plain backup's tar file reaches the extraction directly (backup/tar-stages.ts TarReading:
// ExtractWritable.writeNow), not through the stream's write(): the files come out the same, a
// member that fails is thrown to the caller at once (the stream destroyed with it), and a tar file
// the server compressed still goes through its decompressor.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeHeader, TAR_END } from '../../src/storage/tar/tar-header.js';
import type { TarEntry } from '../../src/storage/tar/tar-header.js';
import { TarReading } from '../../src/backup/tar-stages.js';
import { ExtractWritable } from '../../src/backup/plain/extract-writable.js';

const member = (e: Partial<TarEntry> & { name: string }): TarEntry => ({ type: 'file', mode: 0o600, size: 0, mtime: 0, linkname: '', uid: 0, gid: 0, uname: '', gname: '', ...e }) as TarEntry;
const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

test('tar data written directly to the extraction: the same files; a refused member throws at once', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tar-reading-'));
  try {
    const body = Buffer.from('x'.repeat(1500));
    const tar = Buffer.concat([encodeHeader(member({ name: 'base', type: 'directory', mode: 0o700 })), encodeHeader(member({ name: 'base/f', size: body.length })), body, pad(body.length), TAR_END]);
    const reading = new TarReading();
    const out = join(root, 'ok');
    mkdirSync(out);
    reading.begin('base.tar', new ExtractWritable({ tarName: 'base.tar', root: out, warn: () => {} }));
    for (let i = 0; i < tar.length; i += 700) assert.equal(reading.data(tar.subarray(i, i + 700)), undefined, 'no promise: written synchronously');
    await reading.end();
    assert.deepEqual(readFileSync(join(out, 'base', 'f')), body);

    const bad = new TarReading();
    mkdirSync(join(root, 'bad'));
    const extract = new ExtractWritable({ tarName: 'base.tar', root: join(root, 'bad'), warn: () => {} });
    bad.begin('base.tar', extract);
    assert.throws(() => bad.data(Buffer.concat([encodeHeader(member({ name: '../escape', size: 0 })), TAR_END])), /refusing member "\.\.\/escape" of tar file "base\.tar"/);
    assert.equal(extract.destroyed, true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
