import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { syncEncoder } from '../../src/storage/compress/sync-encoder.js';
import { createDecompressor } from '../../src/storage/compress/index.js';
import { syncDecoder } from '../../src/storage/compress/sync-decoder.js';
import { sampleData } from '../helpers/sample-data.js';

for (const algorithm of ['lz4', 'zstd', 'gzip'] as const) {
  test(`synchronous ${algorithm} frames decode with the streaming decoder and restore's synchronous one`, async () => {
    const enc = syncEncoder(algorithm);
    assert.ok(enc, `no synchronous ${algorithm} encoder here`);
    // Compressible data, incompressible data, a size that is no multiple of a block.
    const data = Buffer.concat([sampleData(3 * 1024 * 1024 + 12345), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251))]);
    const out = Buffer.alloc(enc.bound(data.length) + 10);
    out.fill(0xee, 0, 10);
    const n = enc.encode(data, out, 10);
    const stored = out.subarray(10, 10 + n);
    const streamed = await collect(Readable.from([stored]).pipe(createDecompressor(algorithm)));
    assert.ok(streamed.equals(data));
    const dec = syncDecoder(algorithm);
    if (dec) {
      const parts: Buffer[] = [];
      dec.write(stored, (b) => parts.push(Buffer.from(b)));
      dec.end();
      assert.ok(Buffer.concat(parts).equals(data));
    }
  });
}
