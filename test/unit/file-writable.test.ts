import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileWritable } from '../../src/storage/file-writable.js';
import { writeWithBackpressure, endWritable } from '../../src/storage/stream-util.js';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { EncodingFileWritable, ENCODE_BLOCK } from '../../src/storage/encoding-file-writable.js';
import { PgpitrError } from '../../src/common/errors.js';
import { syncEncoder } from '../../src/storage/compress/sync-encoder.js';
import { createDecompressor } from '../../src/storage/compress/index.js';
import { sampleData } from '../helpers/sample-data.js';

test('FileWritable told to keep no chunk: a chunk reused once write() returned is written as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fw-'));
  try {
    const out = new FileWritable(join(dir, 'f'), false, 0o600, true);
    const reused = Buffer.alloc(300 * 1024);
    const expected: Buffer[] = [];
    // Small chunks (gathered), a large one (written at once), small again, all from one buffer.
    for (const [i, n] of [[1, 1000], [2, 70 * 1024], [3, 300 * 1024], [4, 5], [5, 200 * 1024], [6, 100 * 1024]] as const) {
      reused.fill(i, 0, n);
      expected.push(Buffer.from(reused.subarray(0, n)));
      await writeWithBackpressure(out, reused.subarray(0, n));
      reused.fill(0xee); // the caller reuses the memory at once
    }
    await endWritable(out);
    assert.ok(readFileSync(join(dir, 'f')).equals(Buffer.concat(expected)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('EncodingFileWritable: lz4 frames any decoder reads, from chunks reused once write() returned', async (t) => {
  const encoder = syncEncoder('lz4', 1);
  if (encoder === null) return t.skip('liblz4 is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'efw-'));
  try {
    for (const [name, size] of [['a.lz4', 3 * 1024 * 1024 + 12345], ['b.lz4', ENCODE_BLOCK], ['c.lz4', 0]] as const) {
      const out: EncodingFileWritable = new EncodingFileWritable(join(dir, name), false, 0o600, encoder);
      const data = sampleData(size);
      const reused = Buffer.alloc(200 * 1024);
      // Chunk sizes that cross the blocks at odd places (one larger than a block), all through one buffer.
      for (let off = 0, i = 0; off < data.length; i++) {
        const n = Math.min(data.length - off, [65536, 1, 199999, 32768, 777][i % 5]!);
        data.copy(reused, 0, off, off + n);
        await writeWithBackpressure(out, reused.subarray(0, n));
        reused.fill(0xee); // the caller reuses the memory at once
        off += n;
      }
      await endWritable(out);
      const stored = readFileSync(join(dir, name));
      assert.equal(out.bytesWritten, stored.length);
      if (size === 0) {
        assert.equal(stored.length, 0); // nothing given, nothing written (a tar file is never empty)
        continue;
      }
      const decoded = await collect(Readable.from([stored]).pipe(createDecompressor('lz4')));
      assert.ok(decoded.equals(data), name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('EncodingFileWritable: a file that exists is an error naming it, and is left as it was', (t) => {
  const encoder = syncEncoder('lz4', 1);
  if (encoder === null) return t.skip('liblz4 is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'efw-'));
  try {
    writeFileSync(join(dir, 'taken.lz4'), 'x');
    assert.throws(
      () => new EncodingFileWritable(join(dir, 'taken.lz4'), false, 0o600, encoder),
      (e: unknown) => e instanceof PgpitrError && e.code === 'ERR_STORAGE' && e.message.includes('taken.lz4'),
    );
    assert.equal(readFileSync(join(dir, 'taken.lz4'), 'utf8'), 'x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('FileWritable: flushed() gives the position after what it was given; continueAt() goes on after what others wrote', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fw-'));
  try {
    const path = join(dir, 'f');
    const out = new FileWritable(path, false, 0o600, true);
    await writeWithBackpressure(out, Buffer.alloc(1000, 1)); // gathered, not yet written
    assert.equal(out.flushed(), 1000);
    // Someone else writes 3000 bytes after it (as parallel readers write tar members).
    const { openSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(3000, 2), 0, 3000, 1000);
    closeSync(fd);
    out.continueAt(4000);
    await writeWithBackpressure(out, Buffer.alloc(500, 3));
    await writeWithBackpressure(out, Buffer.alloc(400 * 1024, 4)); // large: written at once
    await endWritable(out);
    const got = readFileSync(path);
    assert.ok(got.equals(Buffer.concat([Buffer.alloc(1000, 1), Buffer.alloc(3000, 2), Buffer.alloc(500, 3), Buffer.alloc(400 * 1024, 4)])));
    assert.equal(out.bytesWritten, got.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
