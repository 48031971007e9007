// SegmentFiles (receive-wal's on-disk writer): segments are written at their
// offsets, retired (synced, renamed) in the background and in order, handed on
// in order with backpressure, the current one stays .partial on close, and a
// failure of a retirement is reported, never swallowed.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentFiles } from '../../src/wal/segment-files.js';
import type { SegmentFilesOptions } from '../../src/wal/segment-files.js';

const SEG = 64 * 1024; // a small segment size keeps the test fast; the code does not care
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgpitr-segfiles-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function options(dir: string, extra: Partial<SegmentFilesOptions> = {}): SegmentFilesOptions {
  return { dir, timeline: 1, segmentSize: SEG, sync: true, synchronous: true, ...extra };
}

test('writes across segment boundaries, renames full segments in order, keeps the last one partial', withDir(async (dir) => {
  const handed: string[] = [];
  const files = new SegmentFiles(options(dir, { onComplete: async (_p, name) => void handed.push(name) }), BigInt(SEG)); // starts at segment 1
  const all = bytes(SEG * 2 + 1000, 7);
  let pos = BigInt(SEG);
  // uneven chunks, one of which straddles two boundaries' worth of data
  for (const size of [1000, SEG - 1000 + 500, SEG - 500, 1000]) {
    const start = Number(pos) - SEG;
    await files.write(pos, all.subarray(start, start + size));
    pos += BigInt(size);
  }
  await files.syncNow();
  assert.equal(files.flushed(), pos);
  assert.equal(files.written(), pos);
  const partial = await files.close();
  assert.equal(partial, join(dir, '000000010000000000000003.partial'));
  assert.deepEqual(handed, ['000000010000000000000001', '000000010000000000000002']);
  assert.deepEqual(readdirSync(dir).sort(), ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003.partial']);
  assert.deepEqual(readFileSync(join(dir, '000000010000000000000001')), all.subarray(0, SEG));
  assert.deepEqual(readFileSync(join(dir, '000000010000000000000002')), all.subarray(SEG, 2 * SEG));
  const last = readFileSync(join(dir, '000000010000000000000003.partial'));
  assert.equal(last.length, SEG); // pre-sized, as pg_receivewal's
  assert.deepEqual(last.subarray(0, 1000), all.subarray(2 * SEG));
}));

test('flush never counts a segment before it is renamed, and syncNow waits for that', withDir(async (dir) => {
  const files = new SegmentFiles(options(dir), 0n);
  await files.write(0n, bytes(SEG, 1)); // completes segment 0; its retirement runs in the background
  await files.write(BigInt(SEG), bytes(10, 2));
  await files.syncNow();
  assert.equal(files.flushed(), BigInt(SEG + 10));
  assert.ok(readdirSync(dir).includes('000000010000000000000000'), 'the finished segment is renamed before flush passes it');
  await files.close();
}));

test('write() waits while more than two finished segments wait to be handed on', withDir(async (dir) => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const handed: string[] = [];
  const files = new SegmentFiles(options(dir, {
    synchronous: false,
    onComplete: async (_p, name) => {
      await gate;
      handed.push(name);
    },
  }), 0n);
  for (let i = 0; i < 2; i++) await files.write(BigInt(i * SEG), bytes(SEG, i)); // two waiting: allowed
  let wrote = false;
  const w = files.write(BigInt(2 * SEG), bytes(SEG, 2)).then(() => (wrote = true)); // a third: waits
  await tick(30);
  assert.equal(wrote, false, 'the stream is held back while the hand-over is behind');
  release();
  await w;
  await files.write(BigInt(3 * SEG), bytes(SEG, 3));
  await files.close();
  assert.deepEqual(handed, ['000000010000000000000000', '000000010000000000000001', '000000010000000000000002', '000000010000000000000003']);
}));

test('a failure to hand a segment on is reported by the next write and by close', withDir(async (dir) => {
  let called: () => void = () => {};
  const handedOn = new Promise<void>((r) => (called = r));
  const files = new SegmentFiles(options(dir, {
    onComplete: async () => {
      called();
      throw new Error('repository unreachable');
    },
  }), 0n);
  await files.write(0n, bytes(SEG, 1));
  await handedOn;
  await tick(5);
  await assert.rejects(files.write(BigInt(SEG), bytes(10, 2)), /repository unreachable/);
  await assert.rejects(files.close(), /repository unreachable/);
  // the segment itself is complete on disk, for the next start to store
  assert.ok(readdirSync(dir).includes('000000010000000000000000'));
}));

test('a failure to rename a finished segment fails syncNow, so its position is never reported as flushed', withDir(async (dir) => {
  const files = new SegmentFiles(options(dir), 0n);
  await files.write(0n, bytes(SEG - 10, 1));
  unlinkSync(join(dir, '000000010000000000000000.partial')); // the rename into place will fail (ENOENT)
  await files.write(BigInt(SEG - 10), bytes(10, 2)).catch(() => {});
  await assert.rejects(files.syncNow(), /000000010000000000000000/);
  assert.ok(files.flushed() < BigInt(SEG), 'the end of a segment that was not renamed is never reported as flushed');
  await assert.rejects(files.close(), /000000010000000000000000/);
}));

test('an fsync that fails once is fatal: a later one is not trusted, the segment is never renamed complete', withDir(async (dir) => {
  for (const how of ['syncNow', 'syncPartial'] as const) {
    const sub = join(dir, how);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    const files = new SegmentFiles(options(sub, { synchronous: how === 'syncNow' }), BigInt(SEG));
    const all = bytes(SEG, 3);
    await files.write(BigInt(SEG), all.subarray(0, 1000));
    // Linux reports a lost write once; the next fsync of the same file succeeds.
    const file = (files as unknown as { file: { sync(): Promise<void> } }).file;
    const real = file.sync.bind(file);
    let failed = false;
    file.sync = () => {
      if (failed) return real();
      failed = true;
      return Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    };
    if (how === 'syncNow') await assert.rejects(() => files.syncNow(), /fsync/);
    else {
      files.syncPartial();
      await tick(20);
    }
    assert.equal(files.flushed(), BigInt(SEG), 'nothing counted as flushed');
    await assert.rejects(() => files.write(BigInt(SEG + 1000), all.subarray(1000)), /fsync/);
    await assert.rejects(() => files.close(), /fsync/);
    assert.equal(files.flushed(), BigInt(SEG));
    assert.deepEqual(readdirSync(sub), ['000000010000000000000001.partial'], how);
  }
}));

test('resuming at the start of a whole-size .partial writes over it in place: what it held stays until the server sends it again', withDir(async (dir) => {
  const old = bytes(SEG, 9);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, '000000010000000000000001.partial'), old);
  const files = new SegmentFiles(options(dir), BigInt(SEG));
  await files.write(BigInt(SEG), old.subarray(0, 8192));
  // Stopped (the connection lost) right after: the rest of the earlier run's bytes are still there.
  await files.close();
  assert.deepEqual(readFileSync(join(dir, '000000010000000000000001.partial')), old);
}));

test('another form\'s .partial of a segment received again is kept aside until the segment is complete, then goes', withDir(async (dir) => {
  const { writeFileSync, existsSync } = await import('node:fs');
  // An earlier run with -Z gzip left segment 1 .partial; this one writes it uncompressed.
  writeFileSync(join(dir, '000000010000000000000001.gz.partial'), 'gzip bytes already reported flushed');
  const files = new SegmentFiles(options(dir), BigInt(SEG));
  await files.write(BigInt(SEG), bytes(8192, 3));
  await files.syncNow();
  assert.ok(!existsSync(join(dir, '000000010000000000000001.gz.partial')), 'no longer under a name a reader takes');
  assert.ok(existsSync(join(dir, '000000010000000000000001.gz.partial.superseded')), 'kept until the segment is complete');
  await files.write(BigInt(SEG + 8192), bytes(SEG - 8192, 4));
  await files.syncNow();
  await files.close();
  assert.deepEqual(readdirSync(dir).sort(), ['000000010000000000000001']);
}));

test('a position in a new file counts as flushed only once the directory entry of that file is synced', withDir(async (dir) => {
  let release!: () => void;
  const synced: string[] = [];
  const syncDirectory = (d: string) => new Promise<void>((resolve) => {
    release = () => {
      synced.push(d);
      resolve();
    };
  });
  const files = new SegmentFiles(options(dir, { syncDirectory }), BigInt(SEG));
  await files.write(BigInt(SEG), bytes(100, 3));
  const reported = files.syncNow();
  await tick(20);
  assert.equal(files.flushed(), BigInt(SEG), 'not flushed while the new file\'s name may be lost');
  release();
  await reported;
  assert.deepEqual(synced, [dir]);
  assert.equal(files.flushed(), BigInt(SEG + 100));
  await files.close();
}));

test('a failed sync of the directory entry of a new file is fatal: nothing in it is reported flushed', withDir(async (dir) => {
  const files = new SegmentFiles(options(dir, { syncDirectory: () => Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })) }), BigInt(SEG));
  await files.write(BigInt(SEG), bytes(100, 3));
  await assert.rejects(() => files.syncNow(), /fsync/);
  assert.equal(files.flushed(), BigInt(SEG));
  await assert.rejects(() => files.close(), /fsync/);
}));
