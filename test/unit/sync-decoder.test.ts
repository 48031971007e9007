// The synchronous decoders of restore's copier threads: byte-exact on what
// pgpitr's compressors store, at any chunking; a cut or damaged object is an
// error; a frame in a form they do not take is declined (UnsupportedInput), so
// that the file goes through the streaming decoders instead.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { spawnSync } from 'node:child_process';
import { createZstdCompressor } from '../../src/storage/compress/zstd.js';
import { createLz4Compressor } from '../../src/storage/compress/lz4.js';
import { compressBuffer } from '../../src/storage/compress/buffer.js';
import { syncDecoder, UnsupportedInput } from '../../src/storage/compress/sync-decoder.js';
import type { StoredCompression } from '../../src/storage/compress/sync-decoder.js';
import { sampleData } from '../helpers/sample-data.js';

const data = sampleData;

function decode(compression: StoredCompression, stored: Buffer, chunk: number): Buffer {
  const d = syncDecoder(compression);
  assert.ok(d, `a synchronous ${compression} decoder`);
  const out: Buffer[] = [];
  for (let i = 0; i < stored.length; i += chunk) d.write(stored.subarray(i, i + chunk), (b) => out.push(Buffer.from(b)));
  d.end();
  return Buffer.concat(out);
}

const compressors = {
  lz4: () => createLz4Compressor(1, 1),
  zstd: () => createZstdCompressor(3, 1),
} as const;

for (const compression of ['lz4', 'zstd'] as const) {
  test(`${compression}: stored objects and bundled files decode byte for byte at any chunking`, async (t) => {
    if (syncDecoder(compression) === null) return t.skip(`no native ${compression} on this machine`);
    const original = data(3 * 1024 * 1024 + 777);
    const stored = await collect(Readable.from([original.subarray(0, 1000), original.subarray(1000)]).pipe(compressors[compression]()));
    for (const size of [7, 4093, 65536, 1 << 20, stored.length]) assert.ok(decode(compression, stored, size).equals(original), `chunks of ${size}`);
    const small = data(5000);
    assert.ok(decode(compression, await compressBuffer(compression, small), 3).equals(small));
  });

  test(`${compression}: a cut object or garbage is an error, never a short file`, async (t) => {
    if (syncDecoder(compression) === null) return t.skip(`no native ${compression} on this machine`);
    const stored = await compressBuffer(compression, data(300_000));
    assert.throws(() => decode(compression, stored.subarray(0, stored.length - 5), 1000), /truncated|ends inside/);
    assert.throws(() => decode(compression, Buffer.from('this is not compressed data at all'), 1000), (e: Error) => !(e instanceof UnsupportedInput));
    const flipped = Buffer.from(stored);
    flipped[Math.floor(flipped.length / 2)] ^= 0xff;
    try {
      const out = decode(compression, flipped, 4096);
      assert.notDeepEqual(out, data(300_000)); // decoded, but the caller's SHA-256 check catches it
    } catch (e) {
      assert.ok(!(e instanceof UnsupportedInput));
    }
  });
}

test('none passes bytes through; gzip is left to the streaming decoder', () => {
  const b = data(1000);
  assert.ok(decode('none', b, 100).equals(b));
  assert.equal(syncDecoder('gzip'), null);
});

test('lz4 frames with checksums or linked blocks are declined, not misread', () => {
  // magic, FLG = version 1 | independent blocks | content checksum, BD = 64 KiB, header checksum byte
  const frame = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0, 0, 0, 0]);
  assert.throws(() => decode('lz4', frame, 100), UnsupportedInput);
  const linked = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0xc0, 0, 0, 0, 0]);
  assert.throws(() => decode('lz4', linked, 100), UnsupportedInput);
});

test('zstd frames that do not record their size (the zstd command reading a pipe) are declined', (t) => {
  if (syncDecoder('zstd') === null) return t.skip('no libzstd on this machine');
  const r = spawnSync('sh', ['-c', 'head -c 100000 /dev/zero | zstd -q -c'], { maxBuffer: 1 << 24 });
  if (r.status !== 0 || r.error) return t.skip('no zstd command');
  assert.throws(() => decode('zstd', r.stdout, 100), UnsupportedInput);
});

test('lz4 skippable frames are passed over by counting, also when cut across chunks', async () => {
  const small = data(70_000);
  const frame = await compressBuffer('lz4', small);
  const skip = Buffer.alloc(8 + 100_000, 7);
  skip.writeUInt32LE(0x184d2a53, 0);
  skip.writeUInt32LE(100_000, 4);
  for (const size of [3, 4096, 1 << 20]) assert.ok(decode('lz4', Buffer.concat([skip, frame, skip, frame]), size).equals(Buffer.concat([small, small])));
  assert.throws(() => decode('lz4', Buffer.concat([frame, skip.subarray(0, 5000)]), 1000), /truncated/);
});
