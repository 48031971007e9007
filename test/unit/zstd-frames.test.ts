// The frame-wise native zstd decoder used for stored objects: byte-exact
// whatever the chunking, and a stream cut inside a frame is an error.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { createZstdCompressor, createZstdFrameDecoder } from '../../src/storage/compress/zstd.js';
import { sampleData } from '../helpers/sample-data.js';

const data = sampleData;

function chunks(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

test('frames of the block compressor decode byte for byte at any chunking', async (t) => {
  const decoder = createZstdFrameDecoder();
  if (decoder === null) return t.skip('no libzstd on this machine');
  const original = data(5 * 1024 * 1024 + 777);
  const stored = await collect(Readable.from(chunks(original, 300_000)).pipe(createZstdCompressor(3, 1)));
  for (const size of [1, 4093, 65536, 1 << 20, stored.length]) {
    if (size === 1 && stored.length > 200_000) continue; // byte by byte is too slow for the whole stream
    const out = await collect(Readable.from(chunks(stored, size)).pipe(createZstdFrameDecoder()!));
    assert.ok(out.equals(original), `chunks of ${size}`);
  }
  const small = await collect(Readable.from([Buffer.from('tiny')]).pipe(createZstdCompressor(3, 1)));
  assert.equal((await collect(Readable.from(chunks(small, 1)).pipe(createZstdFrameDecoder()!))).toString(), 'tiny');
});

test('a stream cut inside a frame, or garbage, is an error', async (t) => {
  if (createZstdFrameDecoder() === null) return t.skip('no libzstd on this machine');
  const stored = await collect(Readable.from([data(2 * 1024 * 1024)]).pipe(createZstdCompressor(3, 1)));
  await assert.rejects(collect(Readable.from([stored.subarray(0, stored.length - 10)]).pipe(createZstdFrameDecoder()!)), /ends inside a frame/);
  await assert.rejects(collect(Readable.from([Buffer.alloc(3 << 20, 7)]).pipe(createZstdFrameDecoder()!)), /longer than pgpitr writes them/);
});
