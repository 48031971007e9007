// Restore's copier thread fed by the main thread (the stored bytes come from
// the network or must be decrypted): the file is written byte for byte from
// encrypted zstd at any chunking; a flipped byte, a missing object and a
// source that fails midway each leave no file behind and say which; delta's
// unchanged file is never fetched.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyThread } from '../../src/restore/copy-thread.js';
import type { CopyJob } from '../../src/restore/copy-job.js';
import { createZstdCompressor } from '../../src/storage/compress/zstd.js';
import { syncDecoder } from '../../src/storage/compress/sync-decoder.js';
import { encryptObject } from '../../src/storage/cipher/chunk-cipher.js';
import { sampleData } from '../helpers/sample-data.js';
import { crc32c, crc32cText } from '../../src/storage/filter/crc32c.js';

const dataKey = { id: randomBytes(16), key: randomBytes(32) };
const objectPath = 'main/backup/x/data/base/1/1259';

async function storedForm(original: Buffer): Promise<Buffer> {
  const compressed = await collect(Readable.from([original]).pipe(createZstdCompressor(3, 1)));
  const out: Buffer[] = [];
  for await (const b of encryptObject((async function* () { yield compressed; })(), dataKey, objectPath)) out.push(b);
  return Buffer.concat(out);
}

function job(dir: string, original: Buffer, over: Partial<CopyJob> = {}): CopyJob {
  return {
    id: 1, source: null, offset: 0, length: -1, compression: 'zstd',
    decrypt: { keyId: dataKey.id, key: dataKey.key, path: objectPath },
    dest: join(dir, 'out'), mode: 0o600, mtime: 1_700_000_000, size: original.length,
    digest: { algorithm: 'sha256', hex: createHash('sha256').update(original).digest('hex') }, crc32c: crc32cText(crc32c(original)), delta: false, sync: false, piece: null, ...over,
  };
}

/** The stored bytes in pieces of `size`, with a count of what was read. */
function pieces(stored: Buffer, size: number, read = { bytes: 0 }, failAt = Infinity): Readable {
  return Readable.from((async function* () {
    for (let i = 0; i < stored.length; i += size) {
      if (i >= failAt) throw new Error('connection reset by the test');
      read.bytes += Math.min(size, stored.length - i);
      yield stored.subarray(i, i + size);
    }
  })(), { objectMode: false });
}

test('a copier thread restores streamed, encrypted, compressed bytes; every failure leaves no file', async (t) => {
  if (syncDecoder('zstd') === null) return t.skip('no native zstd on this machine');
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-copy-'));
  const thread = new CopyThread();
  try {
    const original = sampleData(5 * 1024 * 1024 + 12345);
    const stored = await storedForm(original);
    assert.ok(stored.length > 16384, `stored form of ${stored.length} bytes`);
    for (const size of [1000, 65536, 3 * 1024 * 1024]) {
      const r = await thread.run(job(dir, original), async () => pieces(stored, size));
      assert.equal(r.status, 'written', `pieces of ${size}: ${JSON.stringify(r)}`);
      assert.ok(readFileSync(join(dir, 'out')).equals(original), `pieces of ${size}`);
    }

    // delta: the file is already there and right, so nothing is fetched.
    let opened = false;
    const same = await thread.run(job(dir, original, { delta: true }), async () => {
      opened = true;
      return pieces(stored, 65536);
    });
    assert.equal(same.status, 'unchanged');
    assert.equal(opened, false);

    // A flipped byte in the ciphertext.
    const bad = Buffer.from(stored);
    bad[bad.length >> 1] ^= 1;
    const flipped = await thread.run(job(dir, original), async () => pieces(bad, 65536));
    assert.equal(flipped.status, 'failed');
    assert.match(flipped.status === 'failed' ? `${flipped.failure}: ${flipped.detail}` : '', /^undecryptable: chunk \d+ fails authentication/);
    assert.equal(existsSync(join(dir, 'out')), false);

    // The object is missing.
    const missing = await thread.run(job(dir, original), async () => null);
    assert.deepEqual(missing.status === 'failed' && missing.failure, 'missing');

    // The source breaks midway: its error, and nothing left; the thread still works afterwards.
    await assert.rejects(thread.run(job(dir, original), async () => pieces(stored, 4096, undefined, 4096 * Math.floor(stored.length / 8192))), /connection reset by the test/);
    assert.equal(existsSync(join(dir, 'out')), false);

    // A wrong recorded checksum: damaged. The CRC-32C is checked when recorded, else the SHA-256.
    const wrongCrc = await thread.run(job(dir, original, { crc32c: '00000000' }), async () => pieces(stored, 65536));
    assert.match(wrongCrc.status === 'failed' ? `${wrongCrc.failure}: ${wrongCrc.detail}` : '', /^damaged: CRC-32C [0-9a-f]{8} instead of 00000000/);
    assert.equal(existsSync(join(dir, 'out')), false);
    const wrong = await thread.run(job(dir, original, { digest: { algorithm: 'sha256', hex: '0'.repeat(64) }, crc32c: null }), async () => pieces(stored, 65536));
    assert.match(wrong.status === 'failed' ? `${wrong.failure}: ${wrong.detail}` : '', /^damaged: SHA-256/);
    assert.equal(existsSync(join(dir, 'out')), false);
    const older = await thread.run(job(dir, original, { crc32c: null }), async () => pieces(stored, 65536));
    assert.equal(older.status, 'written', 'a set recording no CRC-32C is checked by its SHA-256');

    // Plain bytes from a local file still work on the same thread, and so does a large plain stream.
    writeFileSync(join(dir, 'src'), original);
    const local = await thread.run(job(dir, original, { source: join(dir, 'src'), compression: 'none', decrypt: null }));
    assert.equal(local.status, 'written');
    assert.ok(readFileSync(join(dir, 'out')).equals(original));
    const big = sampleData(40 * 1024 * 1024);
    const r = await thread.run(job(dir, big, { compression: 'none', decrypt: null }), async () => pieces(big, 256 * 1024));
    assert.equal(r.status, 'written');
    assert.ok(readFileSync(join(dir, 'out')).equals(big));
  } finally {
    await thread.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
