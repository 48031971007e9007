// A gap in the archive never ends a recovery without a word. PostgreSQL takes
// restore_command's "not found" for the end of the archive and promotes, so
// a segment missing in the middle throws away what was archived after it:
// - known when restore plans: a recovery to the end of the archive is refused,
//   naming the gap (--accept-archive-gap recovers up to it, as asked);
// - appearing during the recovery (an expire, a file removed): archive-get
//   fails on it (exit 200), the server stops with the reason in its log, and
//   once the segment is back it recovers to the end.
// The rule is the same on every version (recovery.signal, standby.signal):
// tested on the newest of PGPITR_TEST_VERSIONS.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { CLI, runPgpitr } from '../helpers/pgpitr.js';
import { runCommand } from '../harness/run.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

const version = versionsFromEnv().at(-1)!;

/** The stored file of WAL file `name` in a posix repository's stanza "main". */
function storedPath(repo: string, name: string): string {
  const dir = join(repo, 'main', 'archive', name.slice(0, 16));
  const f = readdirSync(dir).find((n) => n.startsWith(`${name}-`));
  assert.ok(f, `${name} is archived`);
  return join(dir, f);
}

/**
 * Stops the prefetch fetchers working under `dir` (restore starts one ahead of the server): one
 * fetching a segment while the test takes it away would put it back in the spool.
 */
async function stopFetchers(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || e.name !== 'fetcher.lock') continue;
    let pid: number;
    try {
      pid = (JSON.parse(readFileSync(join(e.parentPath, e.name), 'utf8')) as { pid: number }).pid;
      process.kill(pid, 'SIGTERM');
    } catch {
      continue; // gone already
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Removes every copy of `name` under `dir` (a prefetch spool). */
function removeUnder(dir: string, name: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === name) unlinkSync(join(e.parentPath, e.name));
  }
}

test(`a gap in the archive stops recovery instead of ending it (PostgreSQL ${version})`, async (t) => {
  t.after(() => destroyAll());
  const a = await archivingCluster(version, `gap${version}`);
  const { c } = a;
  await c.sql('create table pitr (id int primary key, v text)');
  await c.sql(`insert into pitr select g, 'base' from generate_series(1, 1000) g`);
  const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
  assert.equal(b.code, 0, b.stderr);
  // Three segments after the backup, each with rows of its own.
  const segments: string[] = [];
  const states: string[] = [];
  for (let i = 1; i <= 3; i++) {
    await c.sql(`insert into pitr select g, 'step ${i}' from generate_series(${i * 1000 + 1}, ${i * 1000 + 100}) g`);
    states.push(await tableChecksum(c));
    segments.push(await switchAndWaitArchived(c));
  }
  await c.stop();
  const [first, second, third] = segments as [string, string, string];

  await t.test('known at restore: refused, nothing written; --accept-archive-gap recovers to the gap', async () => {
    const stored = storedPath(a.repo, second);
    renameSync(stored, `${stored}.away`);
    try {
      const dir = restoreDir(c, 'refused');
      const r = await restoreWith(a, dir, []);
      assert.equal(r.code, 6, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`the archive has a gap: WAL segment ${second} is missing, and WAL is archived again from ${third} on; recovery to the end of the archive would end at ${first}`));
      assert.match(r.stderr, /--accept-archive-gap/);
      assert.deepEqual(readdirSync(dir), [], 'nothing written');

      const accepted = await restoreWith(a, dir, ['--accept-archive-gap']);
      assert.equal(accepted.code, 0, accepted.stderr);
      assert.match(accepted.stdout + accepted.stderr, new RegExp(`warning: the archive has a gap: WAL segment ${second} is missing.*recovery ends at ${first}`));
      const copy = await startRecovered(dir, version, `gapok${version}`);
      try {
        assert.equal(await tableChecksum(copy), states[0], 'recovered up to the gap');
      } finally {
        await copy.destroy();
      }
    } finally {
      renameSync(`${stored}.away`, stored);
    }
  });

  await t.test('archive-get by hand in a data directory: a gap only in a recovery to the end, and not when pg_wal holds the file', async () => {
    // PostgreSQL runs restore_command in the data directory with %p relative; restore writes the timeline followed.
    const data = restoreDir(c, 'by-hand');
    mkdirSync(join(data, 'pg_wal'));
    // The segment whole, as a backup holding its own WAL puts it in pg_wal.
    const whole = join(restoreDir(c, 'by-hand-whole'), second);
    assert.equal((await runCommand(process.execPath, [CLI, 'archive-get', ...a.repoArgs, second, whole], { timeoutMs: 120_000 })).code, 0);
    const stored = storedPath(a.repo, second);
    renameSync(stored, `${stored}.away`);
    const old = new Date(Date.now() - 600_000);
    utimesSync(storedPath(a.repo, third), old, old);
    const get = (extra: string[] = []) => runCommand(process.execPath, [CLI, 'archive-get', ...a.repoArgs, ...extra, second, 'pg_wal/RECOVERYXLOG'], { cwd: data, timeoutMs: 120_000 });
    try {
      assert.equal((await get()).code, 1, 'no recovery.signal: not a recovery, "not found"');
      writeFileSync(join(data, 'recovery.signal'), '');
      const stopped = await get(['--recovery-timeline=1']);
      assert.equal(stopped.code, 200, stopped.stderr);
      assert.match(stopped.stderr, new RegExp(`WAL segment ${second} is not in the archive, but ${third} after it is \\(repo1\\): a gap`));
      assert.match(stopped.stderr, /hint: recovery stops here rather than end at the gap/);
      assert.equal((await get(['--accept-archive-gap'])).code, 1, '--accept-archive-gap: the end');
      writeFileSync(join(data, 'pg_wal', second), Buffer.alloc(16 * 1024 * 1024));
      assert.equal((await get()).code, 200, 'pg_wal holds zeros under its name (a stop segment is WAL up to the stop, then zeros): still a gap');
      copyFileSync(whole, join(data, 'pg_wal', second));
      assert.equal((await get()).code, 1, 'pg_wal holds it whole (a backup with its own WAL): recovery reads it there');
      rmSync(join(data, 'pg_wal', second));
      writeFileSync(join(data, 'standby.signal'), '');
      assert.equal((await get()).code, 1, 'a standby: "not found" sends it to streaming');
    } finally {
      renameSync(`${stored}.away`, stored);
    }
  });

  await t.test('appearing during recovery: the server stops at it; with the segment back, recovery reaches the end', async () => {
    const dir = restoreDir(c, 'during');
    const r = await restoreWith(a, dir, []);
    assert.equal(r.code, 0, r.stderr);
    // As an expire running meanwhile would: the segment leaves the archive (and the prefetch spool).
    // The fetcher restore started ahead of the server is stopped first: taking the segment away
    // while it fetches it would leave it in the spool (restore_command starts one again).
    await stopFetchers(a.spool);
    const stored = storedPath(a.repo, second);
    renameSync(stored, `${stored}.away`);
    removeUnder(a.spool, second);
    // The later segment was stored long ago (archive-get waits a minute for one missing ahead of
    // a segment stored just now: parallel pushes may store them out of order).
    const old = new Date(Date.now() - 600_000);
    utimesSync(storedPath(a.repo, third), old, old);
    await assert.rejects(startRecovered(dir, version, `gapstop${version}`), (e: Error) => {
      assert.match(e.message, new RegExp(`WAL segment ${second} is not in the archive, but ${third} after it is \\(repo1\\): a gap, not the end of the archive`));
      return true;
    });
    renameSync(`${stored}.away`, stored);
    const copy = await startRecovered(dir, version, `gapback${version}`);
    try {
      assert.equal(await tableChecksum(copy), states[2], 'every step recovered');
    } finally {
      await copy.destroy();
    }
  });
});
