// A large file restored in pieces across copier threads (file-pieces.ts): the
// pieces of an uncompressed file and of one stored as independent lz4 frames
// (as a parallel backup's readers store it, with its frame index) are written
// out of order by two copiers, each at its place, and their CRC-32C combine to
// the file's; a piece whose stored bytes do not decode to its length is named
// with the bytes it held.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyThread } from '../../src/restore/copy-thread.js';
import type { CopyJob } from '../../src/restore/copy-job.js';
import { combinedCrc, piecesOf } from '../../src/restore/file-pieces.js';
import type { FilePiece } from '../../src/restore/file-pieces.js';
import { digestOf } from '../../src/repo/backup-set/content-digest.js';
import { syncEncoder } from '../../src/storage/compress/sync-encoder.js';
import { crc32c, crc32cText } from '../../src/storage/filter/crc32c.js';
import type { ManifestFile } from '../../src/repo/backup-set/manifest.js';
import { sampleData } from '../helpers/sample-data.js';

const MiB = 1024 * 1024;

/** The stored form of `original` as 1 MiB lz4 frames, with the frame index every 32 MiB. */
function framed(original: Buffer): { stored: Buffer; index: number[] } {
  const enc = syncEncoder('lz4')!;
  const parts: Buffer[] = [];
  const index: number[] = [];
  let stored = 0;
  for (let at = 0; at < original.length; at += MiB) {
    if (at > 0 && at % (32 * MiB) === 0) index.push(stored);
    const chunk = original.subarray(at, at + MiB);
    const out = Buffer.allocUnsafe(enc.bound(chunk.length));
    const n = enc.encode(chunk, out, 0);
    parts.push(out.subarray(0, n));
    stored += n;
  }
  return { stored: Buffer.concat(parts), index };
}

async function restoreInPieces(dir: string, f: ManifestFile, source: string, compression: 'none' | 'lz4', threads: CopyThread[]): Promise<{ pieces: FilePiece[]; crcs: number[]; replies: unknown[] }> {
  const dest = join(dir, 'out');
  rmSync(dest, { force: true });
  closeSync(openSync(dest, 'wx', 0o600));
  const pieces = piecesOf(f, { file: source, offset: 0, length: -1, compression, decrypt: null, open: async () => null }, false)!;
  assert.ok(pieces && pieces.length > 2, 'the file is cut');
  const crcs: number[] = [];
  const replies: unknown[] = [];
  // Last piece first, two copiers at once.
  const order = pieces.map((_, i) => pieces.length - 1 - i);
  await Promise.all(threads.map(async (thread) => {
    for (let i = order.shift(); i !== undefined; i = order.shift()) {
      const p = pieces[i]!;
      const job: CopyJob = {
        id: i, source, offset: p.offset, length: p.storedLength, decrypt: null, compression, dest, mode: 0o600, mtime: 1_700_000_000,
        size: f.size, digest: digestOf(f)!, crc32c: f.crc32c ?? null, delta: false, sync: false, piece: { at: p.at, length: p.length },
      };
      const r = await thread.run(job);
      replies[i] = r;
      if (r.status === 'written') crcs[i] = r.crc32c!;
    }
  }));
  return { pieces, crcs, replies };
}

test('a large file is restored in pieces by two copiers, uncompressed and from indexed lz4 frames', async (t) => {
  if (syncEncoder('lz4') === null) return t.skip('no lz4 encoder');
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-pieces-'));
  const threads = [new CopyThread(), new CopyThread()];
  try {
    const original = sampleData(100 * MiB + 12345);
    const crc = crc32cText(crc32c(original));
    const entry = (over: Partial<ManifestFile>): ManifestFile => ({ path: 'base/1/1', size: original.length, mode: 0o600, mtime: 1_700_000_000, sha256: '0'.repeat(64), crc32c: crc, stored: { object: 'x' }, ...over });

    writeFileSync(join(dir, 'plain'), original);
    const plain = await restoreInPieces(dir, entry({}), join(dir, 'plain'), 'none', threads);
    assert.ok(plain.replies.every((r) => (r as { status: string }).status === 'written'), JSON.stringify(plain.replies));
    assert.equal(crc32cText(combinedCrc(plain.pieces, plain.crcs)), crc);
    assert.ok(readFileSync(join(dir, 'out')).equals(original));

    const { stored, index } = framed(original);
    writeFileSync(join(dir, 'lz4'), stored);
    const lz4 = await restoreInPieces(dir, entry({ index: { every: 32 * MiB, stored: index } }), join(dir, 'lz4'), 'lz4', threads);
    assert.equal(lz4.pieces.length, 4);
    assert.equal(crc32cText(combinedCrc(lz4.pieces, lz4.crcs)), crc);
    assert.ok(readFileSync(join(dir, 'out')).equals(original));

    // No index, no CRC-32C recorded, delta, or a small file: restored whole.
    const src = { file: join(dir, 'lz4'), offset: 0, length: -1, compression: 'lz4' as const, decrypt: null, open: async () => null };
    assert.equal(piecesOf(entry({}), src, false), null);
    assert.equal(piecesOf(entry({ crc32c: undefined, index: { every: 32 * MiB, stored: index } }), src, false), null);
    assert.equal(piecesOf(entry({ index: { every: 32 * MiB, stored: index } }), src, true), null);
    assert.equal(piecesOf(entry({ size: 10 * MiB }), { ...src, compression: 'none' }, false), null);

    // An index pointing a frame too far: that piece decodes to more than its bytes, and says which.
    const wrong = [...index];
    wrong[0] = index[1]!;
    wrong[1] = index[1]! + 1;
    const bad = await restoreInPieces(dir, entry({ index: { every: 32 * MiB, stored: wrong } }), join(dir, 'lz4'), 'lz4', threads);
    const failed = bad.replies.filter((r) => (r as { status: string }).status === 'failed') as { failure: string; detail: string }[];
    assert.ok(failed.length > 0, JSON.stringify(bad.replies));
    assert.ok(failed.some((r) => r.failure === 'damaged' && /for bytes \d+-\d+/.test(r.detail)), JSON.stringify(failed));
  } finally {
    await Promise.all(threads.map((t) => t.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});
