// Parallel backup (-j N, direct read method) from a streaming standby (issue 10,
// item 3). With a pgbench load on the primary, `basebackup -j 2 -Fp -Xstream`
// against the standby gives a backup that verifies, says it was taken from a
// standby, starts (as a primary: without standby.signal the server recovers from
// the backup_label and the streamed WAL up to the end of the backup, which for
// a backup of a standby is the minimum recovery point in the copied pg_control)
// and holds pgbench's balance invariant; `backup -j 2` into a repository from
// the standby restores to a balanced copy. A standby promoted during a -j backup
// fails it with PostgreSQL's own message ("the standby was promoted during
// online backup"), early (while files are still being copied, not once they all
// are), exit 4, the target removed, nothing of ours left on the server.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { runPgbenchInit } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { archivingCluster, backupFromStandby, restoreDir, restoreWith, startRecovered } from '../helpers/pitr.js';
import { runPgpitr, clusterEnv, readState, verifyPlainBackup, CLI } from '../helpers/pgpitr.js';
import { pgbenchBalanced, startPgbenchLoad } from '../helpers/pgbench-load.js';

async function eventually(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`${what} (after ${ms} ms)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** No slot, no session of ours, no base backup running on `c`. */
async function nothingLeft(c: TestCluster): Promise<void> {
  const count = async (q: string) => Number((await c.sql<{ n: string }>(`select count(*)::text n from (${q}) q`))[0]!.n);
  await eventually('a replication slot is left', async () => (await count('select 1 from pg_replication_slots')) === 0);
  await eventually('a pgpitr session is left', async () => (await count(`select 1 from pg_stat_activity where application_name like 'pgpitr%' or backend_type = 'walsender'`)) === 0);
  assert.equal(await count('select 1 from pg_stat_progress_basebackup'), 0, 'a base backup is still running on the server');
}

/** A streaming standby of `primary`, made by pgpitr basebackup -R, caught up. */
async function makeStandby(primary: TestCluster, version: number, name: string): Promise<TestCluster> {
  const dir = join(primary.tempDir(name), 'data');
  const bb = await runPgpitr(['basebackup', '-D', dir, '-X', 'stream', '-R', '-c', 'fast'], clusterEnv(primary));
  assert.equal(bb.code, 0, bb.stderr);
  // The primary's ALTER SYSTEM archive_mode is in the copy: the standby and its copies do not archive into the stanza.
  appendFileSync(join(dir, 'postgresql.auto.conf'), "archive_mode = 'off'\n");
  const standby = await TestCluster.startExisting(dir, version, { name: `${name}${version}` });
  const target = (await primary.sql<{ l: string }>('select pg_current_wal_lsn()::text l'))[0]!.l;
  await eventually('the standby did not catch up', async () => (await standby.sql<{ ok: boolean }>(`select coalesce(pg_last_wal_replay_lsn() >= '${target}'::pg_lsn, false) ok`))[0]!.ok);
  return standby;
}

// One version, the newest; the compatibility matrix runs -j on 13-18 from primaries.
for (const version of versionsFromEnv().slice(-1)) {
  test(`parallel backup from a standby: verified, starts, balanced; promoted mid-backup it fails with the server's message (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const a = await archivingCluster(version, `pstby${version}`);
    const primary = a.c;
    await runPgbenchInit(primary, 2);
    const standby = await makeStandby(primary, version, 'stby');
    const senv = clusterEnv(standby);

    const load = startPgbenchLoad(primary);

    await load.running();
    try {
      await t.test('basebackup -j 2 -Fp -Xstream from the standby under load: verified, starts, balanced', async () => {
        const target = join(primary.tempDir('from-standby'), 'b');
        const r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-j', '2', '-v'], senv);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /reading files with 2 workers straight from/);
        assert.equal(readState(target).status, 'complete');
        assert.match(readFileSync(join(target, 'backup_label'), 'utf8'), /^BACKUP FROM: standby$/m);
        await verifyPlainBackup(target, version);
        // The standby was made by pgpitr basebackup: its own state file stays there, and is not copied.
        assert.ok(existsSync(join(standby.dataDir, 'pgpitr_backup.state')));
        assert.doesNotMatch(readFileSync(join(target, 'backup_manifest'), 'utf8'), /pgpitr_backup/);
        await nothingLeft(standby);
        // The copy holds the standby's standby.signal: without it, it starts as a primary after replaying to the backup's end.
        rmSync(join(target, 'standby.signal'), { force: true });
        const copy = await TestCluster.startExisting(target, version, { name: `pstbyc${version}` });
        try {
          assert.deepEqual(await copy.sql('select pg_is_in_recovery() as r'), [{ r: false }]);
          await pgbenchBalanced(copy);
        } finally {
          await copy.destroy();
        }
      });

      await t.test('one stream from the same standby: its pgpitr_backup.state does not replace the backup\'s own', async () => {
        const target = join(primary.tempDir('one-stream'), 'b');
        const r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast'], senv);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(readState(target).status, 'complete');
        await verifyPlainBackup(target, version);
      });

      await t.test('backup -j 2 into a repository from the standby restores to a balanced copy', async () => {
        // A standby does not archive: the primary must switch away from the stop segment for the backup to end.
        const { code, stdout: out, stderr: err } = await backupFromStandby([...a.repoArgs, '--start-fast', '-j', '2', '--output', 'json'], senv, primary);
        assert.equal(code, 0, err);
        const rec = JSON.parse(out) as { id: string; state: string; backup_from: string };
        assert.equal(rec.state, 'complete');
        assert.equal(rec.backup_from, 'standby');
        const dir = restoreDir(primary, 'restored');
        const rr = await restoreWith(a, dir, ['--set', rec.id, '--target-immediate', '--target-action', 'promote']);
        assert.equal(rr.code, 0, rr.stderr);
        const copy = await startRecovered(dir, version, `pstbyr${version}`);
        try {
          await pgbenchBalanced(copy);
        } finally {
          await copy.destroy();
        }
        await nothingLeft(standby);
      });
    } finally {
      load.stop();
    }

    await t.test('the standby promoted during a -j backup: the server\'s message, exit 4, nothing left', async () => {
      const target = join(primary.tempDir('promoted'), 'b');
      const child = spawn(process.execPath, [CLI, 'basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-j', '2', '-r', '4M', '-P', '--progress-format=json'], {
        env: { ...process.env, ...senv },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      let last = { done: 0, total: 0 };
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      const copying = new Promise<void>((res) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          for (const m of d.toString().matchAll(/"bytes_done":(\d+),"bytes_total":(\d+|null)/g)) last = { done: Number(m[1]), total: Number(m[2]) || 0 };
          if (last.done > 0) res();
        });
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      try {
        await Promise.race([copying, exited.then(() => assert.fail(`the backup ended before copying: ${stderr}`))]);
        await standby.sql('select pg_promote()');
        const code = await exited;
        assert.equal(code, 4, stderr);
        assert.match(stderr, /the standby was promoted during online backup/);
        // Early: the backup stopped while files were still to be copied, not after the whole copy at -r.
        assert.ok(last.total > 0 && last.done < last.total, `the backup copied everything (${last.done} of ${last.total} bytes) before failing`);
        assert.ok(!existsSync(target), 'the target was left behind');
        await nothingLeft(standby);
      } finally {
        clearTimeout(timer);
      }
    });
  });
}
