// Buffers handed from one user to the next on a thread: a buffer given back is
// the next one taken (no fresh memory per file), never handed to two users at
// once, and two decoders alive together on one thread each keep their own.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { giveBack, takeBuffer } from '../../src/common/spare-buffers.js';
import { syncDecoder } from '../../src/storage/compress/sync-decoder.js';
import { createZstdCompressor } from '../../src/storage/compress/zstd.js';
import { sampleData } from '../helpers/sample-data.js';

test('a buffer given back is taken again, once, when it is large enough', () => {
  const a = takeBuffer(1 << 20);
  giveBack(a);
  assert.equal(takeBuffer(4096), a, 'the spare serves a smaller size');
  assert.notEqual(takeBuffer(4096), a, 'not handed out twice');
  giveBack(a);
  assert.notEqual(takeBuffer(2 << 20), a, 'too small for this size');
  assert.equal(takeBuffer(1), a);
});

test('two zstd decoders alive at once on one thread, then one after the other, decode byte for byte', async (t) => {
  if (syncDecoder('zstd') === null) return t.skip('no native zstd on this machine');
  const one = sampleData(3 * 1024 * 1024 + 11);
  const two = Buffer.from(sampleData(2 * 1024 * 1024 + 5)).reverse();
  const stored = async (b: Buffer) => collect(Readable.from([b]).pipe(createZstdCompressor(3, 1)));
  const [s1, s2] = [await stored(one), await stored(two)];
  for (let round = 0; round < 3; round++) {
    const d1 = syncDecoder('zstd')!;
    const d2 = syncDecoder('zstd')!;
    const o1: Buffer[] = [];
    const o2: Buffer[] = [];
    for (let i = 0; i < Math.max(s1.length, s2.length); i += 100_000) {
      if (i < s1.length) d1.write(s1.subarray(i, i + 100_000), (b) => o1.push(Buffer.from(b)));
      if (i < s2.length) d2.write(s2.subarray(i, i + 100_000), (b) => o2.push(Buffer.from(b)));
    }
    d1.end();
    d2.end();
    assert.ok(Buffer.concat(o1).equals(one), `round ${round}: first`);
    assert.ok(Buffer.concat(o2).equals(two), `round ${round}: second`);
  }
});
