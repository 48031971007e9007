// The parallel backup's file creator (dest-creator.ts): files made empty with
// their mode, from the end of the list, one at a time; a file a job claimed
// first is left to it; a file the creator could not make fails its job's claim.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DestCreator } from '../../src/backup/parallel/dest-creator.js';
import { PgpitrError } from '../../src/common/errors.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-creator-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('creates every file empty with its mode, the last first; claims then wait for it', async () => {
  await withDir(async (dir) => {
    const files = Array.from({ length: 20 }, (_, i) => ({ path: join(dir, `f${i}`), mode: i % 2 ? 0o600 : 0o640 }));
    const c = new DestCreator(files);
    c.start();
    for (const f of [...files].reverse()) {
      const claim = c.claim(f.path);
      // The creator works from the end: each file here is its own, made or about to be.
      assert.notEqual(claim, 'job');
      await claim;
      const s = statSync(f.path);
      assert.equal(s.size, 0);
      assert.equal(s.mode & 0o777, f.mode);
    }
  });
});

test("files get exactly their mode, whatever the umask (a source's 0644 file under the run's 077)", async (t) => {
  const umask = process.umask(0o077);
  t.after(() => process.umask(umask));
  await withDir(async (dir) => {
    const files = [0o644, 0o640, 0o600].map((mode, i) => ({ path: join(dir, `f${i}`), mode }));
    const c = new DestCreator(files);
    c.start();
    await c.drained(); // every file the creator's (none claimed)
    for (const f of files) assert.equal(statSync(f.path).mode & 0o777, f.mode);
  });
});

test('a file claimed before the creator reached it is the job\'s; the creator stops where the jobs are', async () => {
  await withDir(async (dir) => {
    const files = Array.from({ length: 10 }, (_, i) => ({ path: join(dir, `f${i}`), mode: 0o600 }));
    const c = new DestCreator(files);
    // Jobs take the first five before the creator starts.
    for (const f of files.slice(0, 5)) assert.equal(c.claim(f.path), 'job');
    c.start();
    // The creator makes f9 down to f5, then meets the jobs' claims: wait for its last file.
    for (let i = 0; i < 1000 && !existsSync(files[5]!.path); i++) await new Promise((r) => setTimeout(r, 10));
    for (const f of files.slice(5)) {
      const claim = c.claim(f.path);
      assert.notEqual(claim, 'job', `${f.path} was the creator's`);
      await claim;
    }
    for (const f of files.slice(0, 5)) assert.equal(existsSync(f.path), false, `${f.path} is the job's to make`);
    for (const f of files.slice(5)) assert.equal(existsSync(f.path), true);
    assert.equal(c.claim(join(dir, 'not listed')), 'job');
  });
});

test('a file the creator could not make fails its claim, naming it; the others are still made', async () => {
  await withDir(async (dir) => {
    writeFileSync(join(dir, 'taken'), 'x');
    const files = [{ path: join(dir, 'free'), mode: 0o600 }, { path: join(dir, 'taken'), mode: 0o600 }];
    const c = new DestCreator(files);
    c.start();
    await assert.rejects(Promise.resolve(c.claim(join(dir, 'taken'))), (e: unknown) => e instanceof PgpitrError && e.code === 'ERR_STORAGE' && e.message.includes(join(dir, 'taken')));
    await c.claim(join(dir, 'free'));
    assert.equal(statSync(join(dir, 'free')).size, 0);
  });
});

test('a large file copied in ranges and dropped meanwhile is not made again by the creator (plain -j)', async () => {
  await withDir(async (dir) => {
    const { copyToPath, RANGE } = await import('../../src/backup/parallel/file-copy.js');
    const { ChecksumReport } = await import('../../src/backup/parallel/checksum-report.js');
    const big = { path: join(dir, 'base/5/16384.1'), mode: 0o600 };
    const smalls = Array.from({ length: 8 }, (_, i) => ({ path: join(dir, `s${i}`), mode: 0o600 }));
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'base/5'), { recursive: true });
    const creator = new DestCreator([big, ...smalls]);
    // Readers that find every range of the large file gone (VACUUM FULL, DROP: the segment removed).
    const gone = { id: 0, kind: 'done' as const, gone: true, length: 0, checksumHex: null, crc32c: null, xxh128: null, encodedBytes: 0, failures: [], partialPage: false };
    const readers = { size: 2, writesLocal: true, doneBytes: 0, limitRate() {}, abort() {}, run: async () => gone, tarPlaces: { tarEnd: 0, reserveTar: () => 0 }, stop: async () => {} };
    const ctx = { readers, startLsn: 0n, algorithm: 'CRC32C' as const, checksums: new ChecksumReport(() => {}), manifest: null, creator };
    creator.start();
    const f = { kind: 'file' as const, name: 'base/5/16384.1', manifestPath: 'base/5/16384.1', source: join(dir, 'nowhere'), serverName: './base/5/16384.1', size: 3 * RANGE, mode: 0o600, mtime: 0, mtimeUs: 0, blockBase: null, local: false };
    await copyToPath(ctx, f, big.path);
    assert.equal(existsSync(big.path), false, 'removed by its job');
    await creator.drained();
    assert.equal(existsSync(big.path), false, 'not made again by the creator');
  });
});
