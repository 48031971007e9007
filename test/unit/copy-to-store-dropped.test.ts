// A -j diff or incr backup: a file dropped after the listing (DROP TABLE, a
// checkpoint removing an old file) is left out, as the server and a full
// backup leave it out, never recorded as the prior backup's copy without a read.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyToStore } from '../../src/backup/parallel/copy-to-store.js';
import type { CopyContext } from '../../src/backup/parallel/copy-context.js';
import type { FileStore } from '../../src/backup/sink.js';
import type { ManifestFile } from '../../src/repo/backup-set/manifest.js';
import { ChecksumReport } from '../../src/backup/parallel/checksum-report.js';

test('copyToStore: a file gone since the listing is not taken from the prior backup', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-dropped-'));
  try {
    const referenced: string[] = [];
    const added: string[] = [];
    const prior = { path: 'pg_logical/snapshots/0-1A000060.snap', size: 128, mode: 0o600, mtime: 1_700_000_000 } as ManifestFile;
    const store: FileStore = {
      encoding: { compression: 'none', level: undefined },
      isSmall: () => true,
      addSmall: async (meta) => void added.push(meta.path),
      addLarge: async (meta) => void added.push(meta.path),
      unchanged: (meta) => (meta.path === prior.path ? prior : null),
      reference: (meta) => void referenced.push(meta.path),
    };
    const readers = { size: 1, writesLocal: true, doneBytes: 0, limitRate() {}, abort() {}, run: () => Promise.reject(new Error('nothing is read')), tarPlaces: { tarEnd: 0, reserveTar: () => 0 }, stop: async () => {} };
    const ctx: CopyContext = { readers, startLsn: 0n, algorithm: 'CRC32C', checksums: new ChecksumReport(() => {}), manifest: null };
    const f = { kind: 'file' as const, name: prior.path, manifestPath: prior.path, source: join(dir, prior.path), serverName: `./${prior.path}`, size: 128, mode: 0o600, mtime: 1_700_000_000, mtimeUs: 1_700_000_000_000_000, blockBase: null, local: true };
    await copyToStore(ctx, f, store);
    assert.deepEqual(referenced, []);
    assert.deepEqual(added, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('copyToStore: a large file emptied before its reader opened it (a log truncated at rotation) is stored empty, not a failed backup', async () => {
  const { ReadPool } = await import('../../src/backup/parallel/read-pool.js');
  const { writeFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-emptied-'));
  const pool = new ReadPool(1, () => {});
  try {
    const small: { path: string; size: number; bytes: number }[] = [];
    const large: string[] = [];
    const store: FileStore = {
      encoding: { compression: 'none', level: undefined },
      isSmall: (n) => n < 65536,
      addSmall: async (meta, data) => void small.push({ path: meta.path, size: meta.size, bytes: data.length }),
      addLarge: async (meta) => void large.push(meta.path),
    };
    const source = join(dir, 'postgresql-Mon.log');
    writeFileSync(source, '');
    // The first job waits until the file was truncated: between the look (restat, when the copy is queued) and the read.
    let truncate!: () => void;
    const truncated = new Promise<void>((r) => (truncate = r));
    const readers = Object.assign(Object.create(pool) as typeof pool, { run: async (...a: Parameters<typeof pool.run>) => (await truncated, pool.run(...a)) });
    const ctx: CopyContext = { readers, startLsn: 0n, algorithm: 'CRC32C', checksums: new ChecksumReport(() => {}), manifest: null };
    const f = { kind: 'file' as const, name: 'log/postgresql-Mon.log', manifestPath: 'log/postgresql-Mon.log', source, serverName: './log/postgresql-Mon.log', size: 0, mode: 0o600, mtime: 0, mtimeUs: 0, blockBase: null, local: true };
    writeFileSync(source, Buffer.alloc(100_000, 0x41));
    const copying = copyToStore(ctx, f, store);
    writeFileSync(source, '');
    truncate();
    await copying;
    assert.deepEqual(large, []);
    assert.deepEqual(small, [{ path: 'log/postgresql-Mon.log', size: 0, bytes: 0 }]);
  } finally {
    await pool.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
