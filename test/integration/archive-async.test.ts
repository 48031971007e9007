// Asynchronous archive-push: the background pusher stores the WAL PostgreSQL
// marks ready, archive_command answers from its spool (the shell fast path for
// files already stored), a killed pusher is replaced, and past
// archive-push-queue-max the waiting segments are dropped: the server log says
// so, pg_wal does not keep them, and info and check report the gap. A
// recovery through the prefetching archive-get replays every archived segment.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, existsSync, chmodSync, statSync, writeFileSync, appendFileSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, chownTree, CLI } from '../helpers/pgpitr.js';
import { liveLockHolder } from '../../src/repo/lock.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { lastArchived, waitArchived, lockHolderPid, killLockHolder, archivedOnDisk } from '../helpers/archiving.js';

const SEGMENT = /^[0-9A-F]{24}$/;
const SPOOL_WAIT = resolve(dirname(CLI), '../../../bin/pgpitr-spool-wait');

/** Writes a little and switches to a new segment; returns the name of the segment switched away from. */
async function switchSegment(c: TestCluster): Promise<string> {
  await c.sql('insert into filler select generate_series(1, 2000)');
  return (await c.sql<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name'))[0]!.name;
}

function setWritable(path: string, writable: boolean): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, writable ? 0o700 : 0o500);
    for (const n of readdirSync(path)) setWritable(join(path, n), writable);
  }
}

// One version: the asynchronous queue is pgpitr's own and does not change with the server's version.
for (const version of versionsFromEnv().slice(-1)) {
  test(`asynchronous archive-push and its queue limit (PostgreSQL ${version})`, async (t) => {
    const c = await TestCluster.create({ version, name: `async${version}`, conf: { archive_mode: 'on' } });
    const repo = c.tempDir('repo');
    const spool = c.tempDir('spool');
    const spoolDir = join(spool, 'main', 'archive-push');
    t.after(async () => {
      killLockHolder(spoolDir, 'pusher');
      await destroyAll();
    });
    const repoArgs = ['--repo', repo, '--stanza', 'main'];
    const archiveCommand = (extra: string) =>
      `'${SPOOL_WAIT}' '${spoolDir}' %f || PGPITR_PUSHER_IDLE_MS=1000 '${process.execPath}' '${CLI}' archive-push --archive-async ` +
      `--spool-path '${spool}' --process-max 2 --archive-timeout 30 ${extra} --repo '${repo}' --stanza main %p`;
    const setArchiveCommand = async (command: string) => {
      await c.sql(`alter system set archive_command = '${command.replace(/'/g, "''")}'`);
      await c.sql('select pg_reload_conf()');
    };
    await setArchiveCommand(archiveCommand(''));
    const env = clusterEnv(c);
    const created = await runPgpitr(['stanza-create', ...repoArgs], env);
    assert.equal(created.code, 0, created.stderr);
    chownTree(repo);
    chownTree(spool);
    await c.sql('create table filler (x int)');
    // A base backup to recover from later, through the prefetching archive-get.
    const backup = join(c.tempDir('backups'), 'base');
    const bb = await runPgpitr(['basebackup', '-D', backup, '-X', 'none', '-c', 'fast'], env);
    assert.equal(bb.code, 0, bb.stderr);

    await t.test('under pgbench every segment PostgreSQL archived is in the repository, identical after archive-get', async () => {
      const bin = clientToolDir();
      const pgbenchEnv = { ...process.env, ...env };
      const init = await runCommand(join(bin, 'pgbench'), ['-i', '-s', '3', '-q'], { env: pgbenchEnv });
      assert.equal(init.code, 0, init.stderr);
      const load = await runCommand(join(bin, 'pgbench'), ['-T', '3', '-c', '2'], { env: pgbenchEnv });
      assert.equal(load.code, 0, load.stderr);
      const last = await switchSegment(c);
      await waitArchived(c, last);
      const stats = (await c.sql<{ failed: number }>('select failed_count::int as failed from pg_stat_archiver'))[0]!;
      assert.equal(stats.failed, 0, `archive_command failed:\n${c.logTail()}`);
      const log = readFileSync(join(spoolDir, 'pusher.log'), 'utf8');
      assert.match(log, /stored 0000000100000000000000/);

      const walDir = join(c.dataDir, 'pg_wal');
      const done = readdirSync(join(walDir, 'archive_status')).filter((f) => f.endsWith('.done')).map((f) => f.slice(0, -5)).filter((f) => SEGMENT.test(f));
      assert.ok(done.length >= 3, `only ${done.length} segments archived`);
      const stored = new Set(archivedOnDisk(repo, 'main').map((f) => f.name));
      const out = c.tempDir('fetched');
      for (const seg of done) {
        assert.ok(stored.has(seg), `${seg} is marked archived but not in the repository`);
        if (!existsSync(join(walDir, seg))) continue; // recycled meanwhile
        const r = await runPgpitr(['archive-get', ...repoArgs, seg, join(out, seg)]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(readFileSync(join(out, seg)).equals(readFileSync(join(walDir, seg))), `${seg} differs after archive-get`);
      }
      // Every segment between the first and the last archived is there.
      const segs = [...stored].filter((n) => SEGMENT.test(n)).sort();
      const first = parseInt(segs[0]!.slice(16), 16);
      assert.equal(segs.length, parseInt(segs[segs.length - 1]!.slice(16), 16) - first + 1, `gap in ${segs.join(' ')}`);
    });

    await t.test('a killed pusher is replaced and nothing is lost', async () => {
      let pid = lockHolderPid(spoolDir, 'pusher');
      if (pid === null) {
        await switchSegment(c); // wakes one up
        for (let i = 0; i < 50 && pid === null; i++) {
          await new Promise((r) => setTimeout(r, 100));
          pid = lockHolderPid(spoolDir, 'pusher');
        }
      }
      assert.ok(pid, 'no pusher running');
      process.kill(pid, 'SIGKILL');
      let last = '';
      for (let i = 0; i < 4; i++) last = await switchSegment(c);
      await waitArchived(c, last);
      assert.ok(archivedOnDisk(repo, 'main').some((f) => f.name === last));
      const again = await runPgpitr(['check', ...repoArgs, '--archive-timeout', '60'], env);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, /ok {3}archive continuity/);
      // Markers of files the server is done with are cleaned up.
      const okMarkers = () => readdirSync(spoolDir).filter((f) => f.endsWith('.ok'));
      for (let i = 0; i < 100 && okMarkers().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(okMarkers(), []);
    });

    await t.test('a spool that cannot be written: the segment is stored synchronously, said, rather than archiving stopping', async () => {
      // A healthy repository (a second stanza of this cluster) and a spool-path that cannot be
      // made (a file where its directory would be: ENOTDIR, as a full or read-only disk refuses).
      const repo2 = c.tempDir('repo-spool-refused');
      assert.equal((await runPgpitr(['stanza-create', '--repo', repo2, '--stanza', 'main'], env)).code, 0);
      const seg = archivedOnDisk(repo, 'main').map((f) => f.name).filter((n) => SEGMENT.test(n)).sort()[0]!;
      const scratch = join(c.tempDir('spool-refused'), 'pg_wal');
      mkdirSync(scratch);
      const got = await runPgpitr(['archive-get', ...repoArgs, seg, join(scratch, seg)]);
      assert.equal(got.code, 0, got.stderr);
      const blocked = join(c.tempDir('spool-file'), 'not-a-directory');
      writeFileSync(blocked, 'x');
      const r = await runPgpitr(['archive-push', '--archive-async', '--spool-path', blocked, '--repo', repo2, '--stanza', 'main', join(scratch, seg)], env);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, new RegExp(`warning: the archive-push spool cannot be written \\(.*\\): ".*${seg}" was stored synchronously; free or fix spool-path`));
      assert.ok(archivedOnDisk(repo2, 'main').some((f) => f.name === seg), 'stored in the repository');
    });

    await t.test('recovery through the prefetching archive-get replays every archived segment', async () => {
      await c.sql('create table prefetch_marker as select generate_series(1, 12345) as x');
      let last = '';
      for (let i = 0; i < 5; i++) last = await switchSegment(c);
      await waitArchived(c, last);
      const getDir = join(spool, 'main', 'archive-get');
      const restore =
        `mv '${getDir}/%f' '%p' 2>/dev/null || PGPITR_FETCHER_IDLE_MS=2000 '${process.execPath}' '${CLI}' archive-get --archive-async ` +
        `--spool-path '${spool}' --archive-get-queue-max 64MB --repo '${repo}' --stanza main %f '%p'`;
      writeFileSync(join(backup, 'recovery.signal'), '');
      appendFileSync(join(backup, 'postgresql.auto.conf'), `archive_mode = 'off'\nrestore_command = '${restore.replace(/'/g, "''")}'\n`);
      const restored = await TestCluster.startExisting(backup, version, { name: `restored${version}` });
      let promoted = false;
      for (let i = 0; i < 300 && !promoted; i++) {
        promoted = !(await restored.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r;
        if (!promoted) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(promoted, `recovery did not finish:\n${restored.logTail()}`);
      assert.equal((await restored.sql<{ n: number }>('select count(*)::int as n from prefetch_marker'))[0]!.n, 12345);
      await restored.stop();
      const log = readFileSync(join(getDir, 'fetcher.log'), 'utf8');
      assert.match(log, /prefetched 0000000100000000000000/);
      // Once recovery stops asking, the fetcher removes what it prefetched and exits.
      for (let i = 0; i < 200 && readdirSync(getDir).some((f) => SEGMENT.test(f)); i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(readdirSync(getDir).filter((f) => SEGMENT.test(f)), []);
    });

    await t.test('past archive-push-queue-max, waiting WAL is dropped, logged, and reported by info and check', async () => {
      // Archiving paused (empty archive_command) while 6 segments pile up, with the
      // repository unwritable: the queue (6 x 16 MB) is past the 32 MB limit.
      await setArchiveCommand('');
      // The pusher stores whatever is ready while it runs: let it go idle and exit first.
      for (let i = 0; i < 100; i++) {
        if (!(await liveLockHolder(new PosixStorage(spoolDir), 'pusher.lock'))) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      setWritable(join(repo, 'main'), false);
      const before = await lastArchived(c);
      const piled: string[] = [];
      for (let i = 0; i < 6; i++) piled.push(await switchSegment(c));
      await setArchiveCommand(archiveCommand('--archive-push-queue-max 32MB'));
      await waitArchived(c, piled[piled.length - 1]!);
      assert.ok(before < piled[0]!);

      const serverLog = readFileSync(c.logPath, 'utf8');
      assert.match(serverLog, /exceeds archive-push-queue-max \(32 MiB\): dropped (\d+ WAL segment\(s\) of [0-9A-F]{24} to [0-9A-F]{24}|WAL segment [0-9A-F]{24}) WITHOUT ARCHIVING THEM/);
      // The server is done with them: a checkpoint recycles them.
      await c.sql('checkpoint');
      const ready = readdirSync(join(c.dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready'));
      assert.deepEqual(ready, []);
      for (const seg of piled) assert.ok(!archivedOnDisk(repo, 'main').some((f) => f.name === seg), `${seg} should have been dropped`);

      // The repository comes back: archiving resumes and the drop record reaches it.
      setWritable(join(repo, 'main'), true);
      chownTree(repo);
      const after = await switchSegment(c);
      await waitArchived(c, after);
      const info = await runPgpitr(['info', ...repoArgs, '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      const report = JSON.parse(info.stdout) as {
        stanzas: { archive: { timelines: { gaps: { from: string; to: string }[] }[] }; dropped_wal: { first: string; last: string; count: number }[] }[];
      };
      const s = report.stanzas[0]!;
      assert.equal(s.dropped_wal.length, 1, info.stdout);
      assert.equal(s.dropped_wal[0]!.first, piled[0]);
      assert.equal(s.dropped_wal[0]!.last, piled[piled.length - 1]);
      assert.deepEqual(s.archive.timelines[0]!.gaps.map((g) => [g.from, g.to]), [[piled[0], piled[piled.length - 1]]]);
      const text = await runPgpitr(['info', ...repoArgs]);
      assert.match(text.stdout, /GAP: 6 segment\(s\) missing/);
      assert.match(text.stdout, /DROPPED: 6 segment\(s\)/);
      const check = await runPgpitr(['check', ...repoArgs, '--archive-timeout', '60'], env);
      assert.equal(check.code, 7, check.stdout + check.stderr);
      assert.match(check.stdout, new RegExp(`FAIL archive continuity: WAL missing from the archive: ${piled[0]} to ${piled[piled.length - 1]} \\(dropped at`));
    });
  });
}
