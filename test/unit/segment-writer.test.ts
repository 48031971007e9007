// SegmentWriter for -Z: after sync() everything written so far decompresses
// from the file; after finish() the file is one whole stream of exactly the
// bytes written (gzip: one member whose ISIZE is the size, as pg_receivewal's).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { openSegmentWriter } from '../../src/wal/segment-writer.js';
import { decompressBuffer } from '../../src/storage/compress/buffer.js';

const SEG = 4 * 1024 * 1024;

function wal(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 64) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i); // compressible, not trivial
  return b;
}

for (const algorithm of ['gzip', 'lz4'] as const) {
  test(`${algorithm}: sync makes what was written decodable; finish ends one stream of exactly the segment`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgpitr-segwriter-'));
    try {
      const path = join(dir, `000000010000000000000001.${algorithm === 'gzip' ? 'gz' : 'lz4'}.partial`);
      const w = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 });
      const all = wal(SEG, 3);
      let off = 0;
      for (const size of [100, 70_000, 1_500_000, 8192]) {
        const wrote = w.write(all.subarray(off, off + size), off);
        if (wrote) await wrote;
        off += size;
      }
      await w.sync();
      const raw = readFileSync(path);
      const sofar = algorithm === 'gzip' ? gunzipSync(raw, { finishFlush: zlibConstants.Z_SYNC_FLUSH }) : await decompressBuffer('lz4', raw);
      assert.ok(sofar.equals(all.subarray(0, off)), `after sync: ${sofar.length} of ${off} bytes decode`);
      while (off < SEG) {
        const size = Math.min(300_000, SEG - off);
        const wrote = w.write(all.subarray(off, off + size), off);
        if (wrote) await wrote;
        off += size;
      }
      await w.finish(true);
      const file = readFileSync(path);
      const whole = algorithm === 'gzip' ? gunzipSync(file) : await decompressBuffer('lz4', file);
      assert.ok(whole.equals(all));
      if (algorithm === 'gzip') assert.equal(file.readUInt32LE(file.length - 4), SEG);
      assert.ok(file.length < SEG / 2, 'compressed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
