// archive-get must never let recovery end early: PostgreSQL takes any
// restore_command exit status from 1 to 125 for "not in the archive" and
// promotes there. Real recoveries of a self-contained backup, whose committed
// data after the backup is only in the archive, through a restore_command that
// meets a fault (a wrong stanza, a repository that is not mounted, a corrupted
// segment, with and without the prefetching archive-get) must stop with
// pgpitr's reason in the server log, never come up promoted without that data.
// Exit 1 stays for a file absent from a healthy repository.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, writeFileSync, appendFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, chownTree, CLI } from '../helpers/pgpitr.js';
import { waitArchived, killLockHolder, archivedOnDisk } from '../helpers/archiving.js';

const SEGMENT = /^[0-9A-F]{24}$/;
const RESTORE_FAILED = 200; // docs/exit-codes.md: archive-get's code for every real failure

// One version: restore_command's faults are pgpitr's own; the PITR matrix recovers on 13-18.
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`archive-get faults stop recovery, never end it early (PostgreSQL ${version})`, async (t) => {
    const c = await TestCluster.create({ version, name: `agr${version}`, conf: { archive_mode: 'on' } });
    const repo = c.tempDir('repo');
    const spool = c.tempDir('spool');
    const getDir = join(spool, 'main', 'archive-get');
    t.after(async () => {
      killLockHolder(getDir, 'fetcher');
      await destroyAll();
    });
    const repoArgs = ['--repo', repo, '--stanza', 'main'];
    const push = `'${process.execPath}' '${CLI}' archive-push --repo '${repo}' --stanza main %p`;
    await c.sql(`alter system set archive_command = '${push.replace(/'/g, "''")}'`);
    await c.sql('select pg_reload_conf()');
    const env = clusterEnv(c);
    const created = await runPgpitr(['stanza-create', ...repoArgs], env);
    assert.equal(created.code, 0, created.stderr);
    chownTree(repo);

    // A self-contained backup, then committed data that only the archive holds.
    await c.sql('create table before_backup as select generate_series(1, 1000) as x');
    const backup = join(c.tempDir('backups'), 'base');
    const bb = await runPgpitr(['basebackup', '-D', backup, '-X', 'stream', '-c', 'fast'], env);
    assert.equal(bb.code, 0, bb.stderr);
    await c.sql('select pg_switch_wal()');
    await c.sql('create table after_backup as select generate_series(1, 54321) as x');
    const dataSeg = (await c.sql<{ name: string }>('select pg_walfile_name(pg_current_wal_lsn()) as name'))[0]!.name;
    await c.sql('select pg_switch_wal()');
    await c.sql('insert into before_backup select generate_series(1, 10)');
    const last = (await c.sql<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name'))[0]!.name;
    await waitArchived(c, last);
    const inBackup = readdirSync(join(backup, 'pg_wal')).filter((f) => SEGMENT.test(f));
    assert.ok(inBackup.every((f) => f < dataSeg), `${dataSeg} must be beyond the backup's WAL (${inBackup.join(' ')})`);

    const archiveGet = (args: string) => `'${process.execPath}' '${CLI}' archive-get ${args} %f '%p'`;

    /** Starts a copy of the backup with this restore_command; returns the server log once it is up or has given up. */
    const recover = async (name: string, restoreCommand: string): Promise<{ log: string; server: TestCluster }> => {
      const data = join(c.tempDir(`restore-${name}`), 'data');
      const cp = await runCommand('cp', ['-a', backup, data]);
      assert.equal(cp.code, 0, cp.stderr);
      writeFileSync(join(data, 'recovery.signal'), '');
      appendFileSync(join(data, 'postgresql.auto.conf'), `archive_mode = 'off'\nrestore_command = '${restoreCommand.replace(/'/g, "''")}'\n`);
      const server = await TestCluster.startExisting(data, version, { name: `${name}${version}`, wait: false });
      for (let i = 0; i < 1200; i++) {
        const log = server.log();
        if (/(aborting startup|shutting down) due to startup process failure|database system is ready to accept (read-only )?connections/.test(log)) return { log, server };
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`the restored server neither started nor stopped:\n${server.logTail()}`);
    };

    /** The recovery must stop (FATAL) with pgpitr's reason in the log, never come up. */
    const mustStop = async (name: string, restoreCommand: string, reason: RegExp): Promise<string> => {
      const { log, server } = await recover(name, restoreCommand);
      if (/ready to accept/.test(log)) {
        let rows = 'none (table missing)';
        try {
          rows = String((await server.sql<{ n: number }>('select count(*)::int as n from after_backup'))[0]!.n);
        } catch {
          /* keep "none" */
        }
        await server.stop('immediate');
        assert.fail(`the restored server came up instead of stopping recovery (rows of after_backup: ${rows}):\n${log}`);
      }
      assert.match(log, /FATAL: {2}could not restore file "[0-9A-F.a-z]+" from archive: child process exited with exit code 200/, log);
      assert.match(log, reason, log);
      assert.doesNotMatch(log, /archive recovery complete|selected new timeline ID/, log);
      return log;
    };

    await t.test('with a healthy archive, recovery replays it to the end and promotes with all committed data', async () => {
      const { log, server } = await recover('healthy', archiveGet(`--repo '${repo}' --stanza main`));
      assert.match(log, /ready to accept/, log);
      let promoted = false;
      for (let i = 0; i < 300 && !promoted; i++) {
        promoted = !(await server.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r;
        if (!promoted) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(promoted, server.logTail());
      assert.equal((await server.sql<{ n: number }>('select count(*)::int as n from after_backup'))[0]!.n, 54321);
      assert.equal((await server.sql<{ n: number }>('select count(*)::int as n from before_backup'))[0]!.n, 1010);
      await server.stop();
    });

    await t.test('a restore_command naming a wrong stanza stops recovery', async () => {
      await mustStop('typo', archiveGet(`--repo '${repo}' --stanza typo`), /pgpitr: error: stanza "typo" does not exist in repository/);
    });

    await t.test('a repository that is not mounted (an empty mount point) stops recovery', async () => {
      const mountPoint = c.tempDir('unmounted');
      await mustStop('unmounted', archiveGet(`--repo '${mountPoint}' --stanza main`), /pgpitr: error: ".*unmounted" is not a pgpitr repository/);
      await mustStop('nopath', archiveGet(`--repo '${join(mountPoint, 'repo')}' --stanza main`), /pgpitr: error: repository ".*repo" does not exist or cannot be reached/);
    });

    await t.test('a corrupted archived segment stops recovery, synchronous and prefetching', async () => {
      const stored = archivedOnDisk(repo, 'main').find((f) => f.name === dataSeg)!;
      assert.ok(stored, `${dataSeg} is not archived`);
      const path = join(repo, 'main', 'archive', dataSeg.slice(0, 16), `${dataSeg}-${stored.sha256}${stored.extension}`);
      const body = readFileSync(path);
      body[Math.floor(body.length / 2)]! ^= 0x55;
      writeFileSync(path, body);
      const damaged = new RegExp(`archived WAL file ".*${dataSeg}-[0-9a-f]{64}.*" (fails its checksum|cannot be decompressed)`);
      await mustStop('corrupt', archiveGet(`--repo '${repo}' --stanza main`), damaged);

      const restore =
        `mv '${getDir}/%f' '%p' 2>/dev/null || PGPITR_FETCHER_IDLE_MS=2000 '${process.execPath}' '${CLI}' archive-get --archive-async ` +
        `--spool-path '${spool}' --archive-get-queue-max 64MB --repo '${repo}' --stanza main %f '%p'`;
      mkdirSync(getDir, { recursive: true });
      chownTree(spool);
      const log = await mustStop('corruptasync', restore, damaged);
      assert.match(log, new RegExp(`could not restore file "${dataSeg}"`));
    });

    await t.test('a failure the prefetcher recorded is reported (200), even once the segment is gone from the archive', async () => {
      const ownSpool = c.tempDir('spool-recorded');
      const dir = join(ownSpool, 'main', 'archive-get');
      mkdirSync(dir, { recursive: true });
      // A fetcher "running" (this process holds its lock), which met this segment damaged.
      writeFileSync(join(dir, 'fetcher.lock'), JSON.stringify({ pid: process.pid, host: hostname(), command: 'test' }));
      const seg = '0000000100000099000000FE';
      writeFileSync(join(dir, `${seg}.error`), `archived WAL file "x" fails its checksum\nhint: the repository file is damaged`);
      const out = join(c.tempDir('recorded'), 'x');
      const r = await runPgpitr(['archive-get', '--archive-async', '--spool-path', ownSpool, ...repoArgs, seg, out]);
      assert.equal(r.code, RESTORE_FAILED, r.stderr);
      assert.match(r.stderr, new RegExp(`WAL file "${seg}" could not be fetched \\(archived WAL file "x" fails its checksum\\) and is no longer in the archive`));
      assert.match(r.stderr, /hint: the repository file is damaged; to end recovery before this file instead, remove .*\.error/);
      // Again when recovery is restarted; once the marker is removed, absent is absent.
      const again = await runPgpitr(['archive-get', '--archive-async', '--spool-path', ownSpool, ...repoArgs, seg, out]);
      assert.equal(again.code, RESTORE_FAILED, again.stderr);
      unlinkSync(join(dir, `${seg}.error`));
      const accepted = await runPgpitr(['archive-get', '--archive-async', '--spool-path', ownSpool, ...repoArgs, seg, out]);
      assert.equal(accepted.code, 1, accepted.stderr);
    });

    await t.test('archive-get run by hand: 1 only for a file absent from a healthy repository, 200 for every other failure', async () => {
      const out = join(c.tempDir('by-hand'), 'x');
      const absent = await runPgpitr(['archive-get', ...repoArgs, '0000000100000099000000FF', out]);
      assert.equal(absent.code, 1, absent.stderr);
      const noHistory = await runPgpitr(['archive-get', ...repoArgs, '00000063.history', out]);
      assert.equal(noHistory.code, 1, noHistory.stderr);
      // A prefetch spool that cannot be used: the answer is the repository's, without the prefetch.
      const notADir = join(c.tempDir('spool-file'), 'spool');
      writeFileSync(notADir, '');
      const noSpool = await runPgpitr(['archive-get', '--archive-async', '--spool-path', notADir, ...repoArgs, '0000000100000099000000FF', out]);
      assert.equal(noSpool.code, 1, noSpool.stderr);
      assert.match(noSpool.stderr, /warning: cannot use spool directory .*; fetching 0000000100000099000000FF without the prefetch/);
      // Without the system (an absolute path, no --system-id): fetched here, no fetcher started, so
      // the spool restore_command's shell moves files from holds none that no system check passed.
      const unchecked = c.tempDir('spool-unchecked');
      const got = await runPgpitr(['archive-get', '--archive-async', '--spool-path', unchecked, ...repoArgs, '0000000100000099000000FF', out]);
      assert.equal(got.code, 1, got.stderr);
      assert.deepEqual(readdirSync(join(unchecked, 'main', 'archive-get')).filter((f) => f.startsWith('fetcher')), []);
      // A segment a fetcher that ended left in the spool (for other repositories, say): a call that
      // starts a new fetcher does not take it, but fetches the repository's copy.
      const good = await runPgpitr(['archive-get', ...repoArgs, last, join(out, '..', 'good')]);
      assert.equal(good.code, 0, good.stderr);
      const bytes = readFileSync(join(out, '..', 'good'));
      const stale = Buffer.from(bytes);
      stale[stale.length >> 1] ^= 0xff; // the same system's page header, other bytes
      const leftover = c.tempDir('spool-leftover');
      mkdirSync(join(leftover, 'main', 'archive-get'), { recursive: true });
      writeFileSync(join(leftover, 'main', 'archive-get', last), stale);
      const system = (await c.sql<{ id: string }>('select system_identifier::text as id from pg_control_system()'))[0]!.id;
      const fresh = await runPgpitr(['archive-get', '--archive-async', '--spool-path', leftover, `--system-id=${system}`, ...repoArgs, last, join(out, '..', 'fresh')], { PGPITR_FETCHER_IDLE_MS: '1000' });
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.ok(readFileSync(join(out, '..', 'fresh')).equals(bytes), 'the repository copy, not the leftover');
      const cases: [string, string[]][] = [
        ['a misspelt command name', ['archive-gte', ...repoArgs, dataSeg, out]],
        ['an unknown option', ['archive-get', '--repository', repo, '--stanza', 'main', dataSeg, out]],
        ['a missing argument', ['archive-get', ...repoArgs, dataSeg]],
        ['no stanza', ['archive-get', '--repo', repo, dataSeg, out]],
        ['not a WAL file name', ['archive-get', ...repoArgs, 'RECOVERYXLOG', out]],
        ['an unreadable configuration file', ['archive-get', '--config', join(repo, 'none.conf'), ...repoArgs, dataSeg, out]],
        ['a damaged segment', ['archive-get', ...repoArgs, dataSeg, out]],
      ];
      for (const [what, args] of cases) {
        const r = await runPgpitr(args);
        assert.equal(r.code, RESTORE_FAILED, `${what}: ${r.stderr}`);
        assert.match(r.stderr, /pgpitr: error: /, what);
      }
      // A damaged stanza record.
      const record = join(repo, 'main', 'stanza.json');
      const saved = readFileSync(record);
      writeFileSync(record, '{"format": "pgpitr-st');
      try {
        const r = await runPgpitr(['archive-get', ...repoArgs, '0000000100000099000000FF', out]);
        assert.equal(r.code, RESTORE_FAILED, r.stderr);
        assert.match(r.stderr, /stanza file ".*stanza.json" is damaged/);
      } finally {
        writeFileSync(record, saved);
      }
    });
  });
}
