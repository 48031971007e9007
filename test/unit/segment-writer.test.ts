// SegmentWriter for -Z: after sync() everything written so far decompresses
// from the file; after finish() the file is one whole stream of exactly the
// bytes written (gzip: one member whose ISIZE is the size, as pg_receivewal's).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { openSegmentWriter } from '../../src/wal/segment-writer.js';
import { decompressBuffer } from '../../src/storage/compress/buffer.js';
import { decodedPartial } from '../../src/wal/resumed-partial.js';
import { fsyncPath } from '../../src/storage/durable.js';

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

async function decodeFile(algorithm: 'gzip' | 'lz4', path: string): Promise<Buffer> {
  const raw = readFileSync(path);
  return algorithm === 'gzip' ? gunzipSync(raw, { finishFlush: zlibConstants.Z_SYNC_FLUSH }) : decompressBuffer('lz4', raw);
}

async function writeRange(w: ReturnType<typeof openSegmentWriter>, all: Buffer, from: number, to: number, step: number): Promise<void> {
  for (let off = from; off < to; off += step) {
    const wrote = w.write(all.subarray(off, Math.min(off + step, to)), off);
    if (wrote) await wrote;
  }
}

for (const algorithm of ['gzip', 'lz4'] as const) {
  const name = (n: number) => `00000001000000000000000${n}.${algorithm === 'gzip' ? 'gz' : 'lz4'}.partial`;

  test(`${algorithm}: a .partial left by an earlier run never holds less than before while the segment is received again`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgpitr-segwriter-'));
    try {
      const path = join(dir, name(1));
      const all = wal(SEG, 7);
      const held = 1_300_000;
      const first = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 });
      await writeRange(first, all, 0, held, 100_000);
      await first.sync(); // the earlier run is killed here: its stream is never ended
      const before = await decodeFile(algorithm, path);
      assert.equal(before.length, held);

      // The connection breaks before the server has sent as much again: the old file stays.
      const short = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 });
      await writeRange(short, all, 0, 300_000, 70_000);
      await short.sync();
      assert.ok((await decodeFile(algorithm, path)).equals(before), 'while behind, the old file stays as it was');
      await short.finish(true);
      assert.ok((await decodeFile(algorithm, path)).equals(before), 'left behind: the old file stays');
      assert.deepEqual(readdirSync(dir), [basename(path)], 'no temporary file left');

      const again = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 });
      await writeRange(again, all, 0, 1_500_000, 250_000); // past what it held: the new stream takes over
      await again.sync();
      const during = await decodeFile(algorithm, path);
      assert.ok(during.length >= 1_500_000 && during.equals(all.subarray(0, during.length)), `taken over: ${during.length} bytes`);
      await writeRange(again, all, 1_500_000, SEG, 250_000);
      await again.finish(true);
      assert.ok((await decodeFile(algorithm, path)).equals(all));
      assert.deepEqual(readdirSync(dir), [basename(path)], 'no temporary file left');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${algorithm}: a resumed .partial whose end a crash damaged keeps what decodes; other bytes from the server replace it`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgpitr-segwriter-'));
    try {
      const path = join(dir, name(2));
      const all = wal(SEG, 11);
      const first = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 });
      await writeRange(first, all, 0, 1_200_000, 200_000);
      await first.sync();
      appendFileSync(path, Buffer.alloc(5000, 0xa5)); // a torn write after the last sync
      const kept = (await decodedPartial(path, algorithm, SEG)).bytes;
      assert.ok(kept.length >= 1_200_000 - 65_536 && kept.equals(all.subarray(0, kept.length)), `${kept.length} bytes decode`);
      const lines: string[] = [];
      const resume = { sync: true, syncDirectory: fsyncPath, log: (l: string) => lines.push(l) };
      const again = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 }, resume);
      await writeRange(again, all, 0, 1_300_000, 100_000);
      await again.sync();
      const now = await decodeFile(algorithm, path);
      assert.ok(now.length >= 1_300_000 && now.equals(all.subarray(0, now.length)), `${now.length} bytes after taking over`);
      await again.finish(true);
      assert.deepEqual(lines, []);

      // Another history for the same segment (or garbage that decoded): the server's bytes win, said.
      const other = wal(SEG, 12);
      const third = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 }, resume);
      await writeRange(third, other, 0, 200_000, 100_000);
      await third.sync();
      assert.match(lines.join('\n'), new RegExp(`warning: ${path.replace(/[.]/g, '\\.')} decodes to other bytes than the server sends from byte \\d+ of the segment on`));
      assert.ok((await decodeFile(algorithm, path)).equals(other.subarray(0, 200_000)));
      await third.finish(true);
      assert.deepEqual(readdirSync(dir), [basename(path)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${algorithm}: an old .partial nothing of which decodes here is moved aside, and the segment received again`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgpitr-segwriter-'));
    try {
      const path = join(dir, name(3));
      const foreign = Buffer.alloc(300_000, 0x5a); // not a stream this reader takes (pg_receivewal's linked lz4 blocks, say)
      writeFileSync(path, foreign);
      const lines: string[] = [];
      const all = wal(SEG, 13);
      const w = openSegmentWriter(path, SEG, 0, { algorithm, level: 1 }, { sync: true, syncDirectory: fsyncPath, log: (l) => lines.push(l) });
      await writeRange(w, all, 0, 2_000_000, 500_000);
      await w.sync();
      // What is reported flushed is in the file of the segment's name.
      assert.ok((await decodeFile(algorithm, path)).equals(all.subarray(0, 2_000_000)));
      assert.ok(readFileSync(`${path}.undecoded`).equals(foreign), 'the old file is kept aside');
      assert.match(lines.join('\n'), /cannot be decoded here: moved to .*\.undecoded, the segment is received again/);
      await w.finish(true);
      assert.deepEqual(readdirSync(dir).sort(), [basename(path), `${basename(path)}.undecoded`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
