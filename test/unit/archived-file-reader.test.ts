// Archived WAL files read one after another for a restore target
// (repo/archived-file-reader.ts): each as stored (zstd into a reused buffer,
// lz4, uncompressed) decoded and checked, the next one fetched meanwhile;
// a file read out of the order announced, a damaged file (named when it is
// read), reading again after the buffers were let go, and a SHA-256 thread
// that died (the main thread hashes then).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { ArchivedFileReader } from '../../src/repo/archived-file-reader.js';
import { archivedFilePath } from '../../src/repo/archive-store.js';
import { sha256 } from '../../src/repo/wal-digest.js';
import type { ArchivedFile } from '../../src/repo/archive-store.js';
import { compressBuffer } from '../../src/storage/compress/buffer.js';

const SIZE = 256 * 1024;

test('segments read in turn: every compression, out of the announced order, a damaged one named, and after release', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-reader-'));
  try {
    const storage = new PosixStorage(dir);
    const repo = repositoryOn(storage, dir);
    const files: { f: ArchivedFile; content: Buffer }[] = [];
    const kinds = [['zstd', '.zst'], ['zstd', '.zst'], ['lz4', '.lz4'], ['none', ''], ['zstd', '.zst']] as const;
    for (const [i, [algo, ext]] of kinds.entries()) {
      // Compressible and distinct: half random, half zeros.
      const content = Buffer.concat([randomBytes(SIZE / 2), Buffer.alloc(SIZE / 2)]);
      const name = `0000000100000000000000${(i + 1).toString(16).toUpperCase().padStart(2, '0')}`;
      const stored = algo === 'none' ? content : await compressBuffer(algo, content);
      const f: ArchivedFile = { name, sha256: sha256(content), extension: ext, size: stored.length, mtimeMs: 0 };
      await storage.write(archivedFilePath('main', f), stored);
      files.push({ f, content });
    }
    const reader = new ArchivedFileReader(repo, 'main');
    const all = files.map((x) => x.f);
    const seen: Buffer[] = [];
    const settled = () => new Promise((r) => setTimeout(r, 100)); // the files fetched ahead are written meanwhile
    for (let i = 0; i < files.length; i++) {
      const data = await reader.read(all[i]!, all.slice(i + 1, i + 3));
      await settled();
      assert.ok(data.equals(files[i]!.content), `file ${i} as stored, after the files fetched ahead were written`);
      seen.push(data);
    }
    // The zstd files are decoded into buffers reused from one file to the next (a read's result is
    // valid only until the next read): three of them, fewer buffers.
    assert.ok(new Set([seen[0]!, seen[1]!, seen[4]!].map((b) => b.buffer)).size < 3);
    // Out of the order announced: the file asked for, all the same.
    const out = await reader.read(all[1]!, [all[2]!, all[3]!]);
    await settled();
    assert.ok(out.equals(files[1]!.content));
    assert.ok((await reader.read(all[3]!)).equals(files[3]!.content));

    // A damaged file fetched ahead is reported when it is read, naming it.
    await storage.write(archivedFilePath('main', all[2]!), Buffer.from('not what was stored'));
    await reader.read(all[1]!, [all[2]!]);
    await assert.rejects(reader.read(all[2]!), new RegExp(`archived WAL file ".*${all[2]!.name}.*" (cannot be decompressed|fails its checksum)`));

    await reader.release();
    assert.ok((await reader.read(all[0]!)).equals(files[0]!.content), 'read again after release');
    // One read at a time: the buffers are handed out one call at a time.
    const both = [reader.read(all[0]!), reader.read(all[1]!)];
    await assert.rejects(Promise.all(both), /called again before the last call returned/);
    await Promise.allSettled(both);

    // A SHA-256 thread that died leaves the hashing to the main thread, checks and all.
    // (Only where libzstd decodes into the shared buffers: without it nothing is hashed elsewhere.)
    const hasher = (reader as unknown as { hasher: { worker: { terminate(): Promise<number> } } | null }).hasher;
    if (hasher) {
      await hasher.worker.terminate();
      assert.ok((await reader.read(all[4]!)).equals(files[4]!.content), 'read with the thread gone');
      await storage.write(archivedFilePath('main', all[4]!), await compressBuffer('zstd', randomBytes(SIZE)));
      await assert.rejects(reader.read(all[4]!), new RegExp(`archived WAL file ".*${all[4]!.name}.*" fails its checksum`));
    }
    await reader.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
