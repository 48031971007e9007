// Repository backups around restore: one backup of a stanza at a time (an
// interrupted one is never restored), retention, verify, delta restore, a
// restore killed at random moments, tablespaces, and PostgreSQL's
// pg_verifybackup on a restored directory.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, renameSync, writeFileSync, mkdirSync, rmSync, statSync, linkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, chownTree, CLI } from '../helpers/pgpitr.js';
import { archivingCluster, backupFromStandby, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

interface Record {
  id: string;
  state: string;
  start_wal: string;
  stop_wal: string;
}

function listSetFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

// One version: 15, whose pg_verifybackup judges a restored backup; the PITR matrix backs up and restores on 13-18.
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`repository backups, retention, verify and restore (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `repo${version}`);
    const { c } = a;
    const env = c.connectionEnv();
    const tsDir = c.tempDir('ts1');
    await c.sql(`create tablespace ts1 location '${tsDir}'`);
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql('create table in_ts (id int, v text) tablespace ts1');
    await c.sql(`insert into pitr select g, md5(g::text) from generate_series(1, 20000) g`);
    await c.sql(`insert into in_ts select g, md5(g::text) from generate_series(1, 5000) g`);
    const tsOid = (await c.sql<{ oid: number }>(`select oid::int as oid from pg_tablespace where spcname = 'ts1'`))[0]!.oid;
    const backup = async (...extra: string[]) => {
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json', ...extra], env);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Record;
    };
    // A file of the data directory with setuid and setgid bits: restore (as root, here) never gives them back.
    writeFileSync(join(c.dataDir, 'setuid_helper'), 'x');
    chmodSync(join(c.dataDir, 'setuid_helper'), 0o6755);
    const first = await backup();
    const atFirst = await tableChecksum(c);
    const inTsAtFirst = await tableChecksum(c, 'in_ts');

    await t.test('a second backup of the stanza while one runs is refused; a killed one is never restored', async () => {
      const slow = spawn(process.execPath, [CLI, 'backup', ...a.repoArgs, '--start-fast', '--max-rate', '256k'], { env: { ...process.env, ...env }, stdio: 'ignore' });
      const exited = new Promise<void>((res) => slow.on('exit', () => res()));
      const backupRoot = join(a.repo, 'main', 'backup');
      for (let i = 0; i < 300 && readdirSync(backupRoot).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      const second = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], env);
      assert.equal(second.code, 5, second.stderr);
      assert.match(second.stderr, /stanza "main" is locked by "backup" \(pid \d+/);
      slow.kill('SIGKILL');
      await exited;
      const killedId = readdirSync(backupRoot).find((n) => n !== first.id)!;
      const info = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      const backups = (JSON.parse(info.stdout) as { stanzas: { backups: { id: string; state: string }[] }[] }).stanzas[0]!.backups;
      assert.deepEqual(backups.map((b) => [b.id, b.state]), [[first.id, 'complete'], [killedId, 'interrupted']]);
      const dry = await restoreWith(a, join(restoreDir(c, 'after-kill'), 'd'), ['--dry-run', '--output', 'json', '--tablespace-map-all', restoreDir(c, 'after-kill-ts')]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.equal(JSON.parse(dry.stdout).backup, first.id, dry.stderr);
      const refused = await restoreWith(a, join(restoreDir(c, 'after-kill2'), 'd'), ['--set', killedId]);
      assert.equal(refused.code, 6, refused.stderr);
      assert.match(refused.stderr, /is not complete/);
    });

    await c.sql(`update pitr set v = 'second' where id % 10 = 0`);
    const second = await backup();
    const atSecond = await tableChecksum(c);
    await c.sql(`update pitr set v = 'third' where id % 10 = 1`);
    const third = await backup();
    await switchAndWaitArchived(c);

    await t.test('restore with a relocated tablespace; the copy passes pg_verifybackup before it starts', async () => {
      const dir = restoreDir(c, 'reloc');
      const newTs = join(restoreDir(c, 'reloc-ts'), 'ts');
      const busy = restoreDir(c, 'busy-ts');
      writeFileSync(join(busy, 'x'), 'x');
      const refused = await restoreWith(a, dir, ['--set', first.id, '--tablespace-map', `${tsOid}=${busy}`]);
      assert.equal(refused.code, 5, refused.stderr);
      assert.match(refused.stderr, new RegExp(`tablespace ${tsOid}'s directory "${busy}" exists and is not empty`));
      assert.deepEqual(readdirSync(dir), []);
      // A typo in the oid is named, before the tablespace meant is found going to its old location.
      const typo = await restoreWith(a, dir, ['--set', first.id, '--tablespace-map', `99999=${newTs}`]);
      assert.equal(typo.code, 2, typo.stderr);
      assert.match(typo.stderr, /--tablespace-map names tablespace "99999", which backup \S+ does not hold/);
      const typoName = await restoreWith(a, dir, ['--set', first.id, '--tablespace-map', `tsx=${newTs}`]);
      assert.equal(typoName.code, 2, typoName.stderr);
      assert.match(typoName.stderr, new RegExp(`its tablespaces: ${tsOid} \\(ts1\\)`));
      // By name, as the backup recorded it.
      const r = await restoreWith(a, dir, ['--set', first.id, '--tablespace-map', `ts1=${newTs}`, '--target-immediate', '--target-action', 'promote']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(statSync(join(dir, 'setuid_helper')).mode & 0o7777, 0o755, 'restored without its setuid and setgid bits');
      if (version === 15) {
        // PostgreSQL 15's pg_verifybackup reads manifests of 13 to 16; -n: the WAL comes from the archive.
        const manifest = join(restoreDir(c, 'manifest'), 'backup_manifest');
        const z = await runCommand('zstd', ['-d', '-q', '-o', manifest, join(a.repo, 'main', 'backup', first.id, 'backup_manifest.zst')]);
        assert.equal(z.code, 0, z.stderr);
        const v = await runCommand(join(clientToolDir(), 'pg_verifybackup'), ['-n', '-m', manifest, '-i', 'postgresql.auto.conf', '-i', 'recovery.signal', dir]);
        assert.equal(v.code, 0, v.stdout + v.stderr);
      }
      chownTree(newTs);
      const copy = await startRecovered(dir, version, `reloc${version}`);
      try {
        assert.equal(await tableChecksum(copy), atFirst);
        assert.equal(await tableChecksum(copy, 'in_ts'), inTsAtFirst);
        const loc = (await copy.sql<{ l: string }>(`select pg_tablespace_location(${tsOid}) as l`))[0]!.l;
        assert.equal(loc, newTs);
      } finally {
        await copy.destroy();
      }
    });

    await t.test('--delta over a copy that diverged rewrites only what differs and gives the same data', async () => {
      const dir = restoreDir(c, 'delta');
      // Levels of the mapped path that are not there yet are made by restore (as root here), and given to the cluster's owner.
      const tsMap = ['--tablespace-map', `${tsOid}=${join(restoreDir(c, 'delta-ts'), 'deep', 'er', 'ts')}`];
      const full = await restoreWith(a, dir, ['--set', second.id, ...tsMap, '--target-immediate', '--target-action', 'promote', '--output', 'json', '-P']);
      assert.equal(full.code, 0, full.stderr);
      const written = (JSON.parse(full.stdout) as { files: { written: number } }).files.written;
      // Progress ends at every file and byte, pg_control (written last) included.
      const last = full.stderr.trim().split('\n').filter((l) => l.includes('restore: ')).pop() ?? '';
      assert.match(last, /restore: (\d+)\/\1 files, (\d+)\/\2 MiB \(100%\)/, full.stderr);
      let copy = await startRecovered(dir, version, `delta${version}`);
      await copy.sql(`update pitr set v = 'diverged' where id < 100`);
      await copy.sql('create table stray (x int)');
      // A tablespace made after the backup: the delta is refused while the cluster's directory is at its
      // location (left as files no catalog names, or removed by replaying its creation: whose it is cannot be told); removed by hand, the
      // delta removes the link, not the location itself.
      const strayTs = restoreDir(c, 'delta-stray-ts');
      await copy.sql(`create tablespace stray_ts location '${strayTs}'`);
      await copy.sql('create table in_stray (x int) tablespace stray_ts; insert into in_stray select generate_series(1, 1000)');
      const strayOid = (await copy.sql<{ oid: number }>(`select oid::int as oid from pg_tablespace where spcname = 'stray_ts'`))[0]!.oid;
      const strayVersionDir = readdirSync(strayTs).find((n) => n.startsWith('PG_'))!;
      writeFileSync(join(strayTs, 'not-the-cluster'), 'kept');
      await copy.stop();
      const running = await restoreWith(a, c.dataDir, ['--delta']);
      assert.equal(running.code, 5);
      assert.match(running.stderr, /is running/);
      // A stopped cluster of another system (a -D typo): --delta refuses it before removing anything.
      const foreign = await TestCluster.create({ version, name: `foreign${version}`, fresh: true }); // its own initdb: another system identifier
      await foreign.stop();
      const control = readFileSync(join(foreign.dataDir, 'global', 'pg_control'));
      const wrong = await restoreWith(a, foreign.dataDir, ['--delta']);
      assert.equal(wrong.code, 5, wrong.stderr);
      assert.match(wrong.stderr, /is a data directory of another database system \(system identifier \d+; the backup is of \d+\)/);
      assert.ok(readFileSync(join(foreign.dataDir, 'global', 'pg_control')).equals(control), 'nothing written or removed there');
      assert.ok(existsSync(join(foreign.dataDir, 'PG_VERSION')));
      await foreign.destroy();
      // A stored object of the backup gone (a lifecycle rule, a removal by hand): refused before the
      // delta touches the cluster (its pg_control stays: it can still be started as it was).
      const lostObject = listSetFiles(join(a.repo, 'main', 'backup', second.id, 'data'))[0]!;
      renameSync(lostObject, `${lostObject}.aside`);
      const controlBefore = readFileSync(join(dir, 'global', 'pg_control'));
      const lost = await restoreWith(a, dir, ['--delta', '--set', second.id, ...tsMap]);
      renameSync(`${lostObject}.aside`, lostObject);
      // The newest backup's object gone: info no longer calls it restorable (nor check, monitoring on it).
      const newestSet = join(a.repo, 'main', 'backup', third.id);
      const newestObject = [join(newestSet, 'data'), join(newestSet, 'bundle')].filter((d) => existsSync(d)).flatMap(listSetFiles)[0]!;
      renameSync(newestObject, `${newestObject}.aside`);
      const shown = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      renameSync(`${newestObject}.aside`, newestObject);
      assert.equal(shown.code, 0, shown.stderr);
      const backups = (JSON.parse(shown.stdout) as { stanzas: { backups: { id: string; restorable: boolean; problem: string | null }[] }[] }).stanzas[0]!.backups;
      const newest = backups.find((x) => x.id === third.id)!;
      assert.equal(newest.restorable, false, JSON.stringify(newest));
      assert.match(newest.problem ?? '', /the stored bytes of 1 file\(s\) are missing from the repository/);
      assert.equal(backups.find((x) => x.id === second.id)!.restorable, true);
      // The newest backup's record damaged: restore chooses an older one, and says why.
      const recordPath = join(newestSet, 'backup.json');
      const recordText = readFileSync(recordPath);
      writeFileSync(recordPath, recordText.subarray(0, 40));
      const older = await restoreWith(a, join(restoreDir(c, 'record-damaged'), 'd'), ['--dry-run', '--target-immediate', '--tablespace-map-all', restoreDir(c, 'record-damaged-ts')]);
      // Named with --set: its record is said damaged (exit 5), not "not complete".
      const named = await restoreWith(a, join(restoreDir(c, 'record-damaged-set'), 'd'), ['--dry-run', '--set', third.id, '--target-immediate', '--tablespace-map-all', restoreDir(c, 'record-damaged-set-ts')]);
      writeFileSync(recordPath, recordText);
      assert.equal(named.code, 5, named.stderr);
      assert.match(named.stderr, new RegExp(`the record of backup ${third.id} cannot be read`));
      assert.equal(older.code, 0, older.stderr);
      assert.match(older.stdout + older.stderr, new RegExp(`warning: backup ${third.id} is passed over: its record cannot be read`));
      assert.equal(lost.code, 5, lost.stderr);
      assert.match(lost.stderr, new RegExp(`backup ${second.id} cannot be restored: the stored bytes of 1 file\\(s\\) are missing from the repository`));
      assert.ok(readFileSync(join(dir, 'global', 'pg_control')).equals(controlBefore), 'the cluster was touched');
      // Files hard-linked from another directory (what pg_upgrade --link leaves, a cp -al clone) are written fresh even where they match.
      const other = restoreDir(c, 'delta-linked');
      const linked = readdirSync(join(dir, 'base', '1')).filter((n) => /^\d+$/.test(n)).slice(0, 20);
      for (const n of linked) linkSync(join(dir, 'base', '1', n), join(other, n));
      // A file whose content matches but whose mode does not gets the recorded mode (rewritten).
      const modeOf = (p: string) => statSync(p).mode & 0o777;
      const recordedMode = modeOf(join(dir, 'PG_VERSION'));
      chmodSync(join(dir, 'PG_VERSION'), 0o644);
      const plan = await restoreWith(a, dir, ['--delta', '--set', second.id, ...tsMap, '--dry-run']);
      assert.equal(plan.code, 5, plan.stderr);
      assert.match(plan.stderr, new RegExp(`has tablespace ${strayOid} \\(at ".*delta-stray-ts"\\), which backup ${second.id} does not hold, and ${join(strayTs, strayVersionDir)} is there`), plan.stderr);
      const refusedStray = await restoreWith(a, dir, ['--delta', '--set', second.id, ...tsMap]);
      assert.equal(refusedStray.code, 5, refusedStray.stderr);
      assert.ok(existsSync(join(strayTs, strayVersionDir)) && existsSync(join(dir, 'global', 'pg_control')), 'refused before anything is written or removed');
      rmSync(join(strayTs, strayVersionDir), { recursive: true });
      // A directory where the backup has a file: removed, the file written in its place.
      rmSync(join(dir, 'PG_VERSION'));
      mkdirSync(join(dir, 'PG_VERSION', 'below'), { recursive: true });
      writeFileSync(join(dir, 'PG_VERSION', 'below', 'f'), 'x');
      const delta = await restoreWith(a, dir, ['--delta', '--set', second.id, ...tsMap, '--target-immediate', '--target-action', 'promote', '--output', 'json']);
      assert.equal(delta.code, 0, delta.stderr);
      assert.equal(modeOf(join(dir, 'PG_VERSION')).toString(8), recordedMode.toString(8));
      for (const n of linked) assert.equal(statSync(join(dir, 'base', '1', n)).nlink, 1, `base/1/${n} is still shared with another directory`);
      const d = (JSON.parse(delta.stdout) as { files: { written: number; unchanged: number; removed: number } }).files;
      assert.ok(d.written < written / 4, `delta wrote ${d.written} of ${written} files`);
      assert.ok(d.unchanged > written / 2, `delta left ${d.unchanged} files`);
      assert.ok(d.removed > 0);
      assert.ok(!existsSync(join(dir, 'pg_tblspc', String(strayOid))), 'the stray tablespace link is gone');
      assert.deepEqual(readdirSync(strayTs), ['not-the-cluster'], 'the link is gone; at the location, what else was there stays');
      copy = await startRecovered(dir, version, `delta2${version}`);
      try {
        assert.equal(await tableChecksum(copy), atSecond);
        assert.equal((await copy.sql<{ n: number }>(`select count(*)::int as n from pg_class where relname = 'stray'`))[0]!.n, 0);
      } finally {
        await copy.destroy();
      }
    });

    await t.test('a restore killed at random moments can never be started; a rerun completes it', async () => {
      const dir = restoreDir(c, 'killed');
      const tsMap = ['--tablespace-map', `${tsOid}=${join(restoreDir(c, 'killed-ts'), 'ts')}`];
      const args = [CLI, 'restore', ...a.repoArgs, '--spool-path', a.spool, '-D', dir, '--set', third.id, ...tsMap, '--target-immediate', '--target-action', 'promote'];
      let finished = false;
      for (const delayMs of [5, 60, 150, 300, 600]) {
        const child = spawn(process.execPath, args, { stdio: 'ignore' });
        const done = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
        await new Promise((r) => setTimeout(r, delayMs));
        child.kill('SIGKILL');
        const code = await done;
        if (code === 0) {
          // Finished before the kill: the restore is complete, and a rerun would rightly refuse the
          // directory (not empty, no marker). Later delays have nothing more to test.
          finished = true;
          break;
        }
        // Killed after pg_control (written last) and the marker's removal, in what follows (the WAL
        // prefetch's head start, the last messages): the restore is complete, as if it had finished.
        if (existsSync(join(dir, 'global', 'pg_control')) && !existsSync(join(dir, 'pgpitr_restore.inprogress'))) {
          finished = true;
          break;
        }
        assert.equal(existsSync(join(dir, 'global', 'pg_control')), false, `pg_control exists after a kill at ${delayMs} ms`);
      }
      if (!finished) {
        const rerun = await runPgpitr(['restore', ...args.slice(2)]);
        assert.equal(rerun.code, 0, rerun.stderr);
      }
      assert.equal(existsSync(join(dir, 'pgpitr_restore.inprogress')), false);
      const copy = await startRecovered(dir, version, `killed${version}`);
      try {
        assert.equal((await copy.sql<{ n: number }>(`select count(*)::int as n from pitr where v = 'third'`))[0]!.n, 2000);
      } finally {
        await copy.destroy();
      }
    });

    await t.test('a restore killed while it wrote its marker (only the temporary file there) is resumed by a rerun', async () => {
      const half = restoreDir(c, 'killed-marker');
      writeFileSync(join(half, 'pgpitr_restore.inprogress.tmp-4242'), 'restore of backup');
      const tsMap = ['--tablespace-map', `${tsOid}=${join(restoreDir(c, 'killed-marker-ts'), 'ts')}`];
      const resumed = await restoreWith(a, half, ['--set', third.id, ...tsMap, '--target-immediate']);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(existsSync(join(half, 'pgpitr_restore.inprogress.tmp-4242')), false);
      assert.equal(existsSync(join(half, 'global', 'pg_control')), true);
    });

    await t.test('a restore whose spool cannot be written fails before its marker: the rerun starts afresh, not "resuming"', async () => {
      const dir = restoreDir(c, 'bad-spool');
      const notDir = join(restoreDir(c, 'bad-spool-file'), 'file');
      writeFileSync(notDir, 'not a directory');
      const tsMap = ['--tablespace-map', `${tsOid}=${join(restoreDir(c, 'bad-spool-ts'), 'ts')}`];
      const failed = await runPgpitr(['restore', ...a.repoArgs, '--spool-path', notDir, '-D', dir, '--set', third.id, ...tsMap, '--target-immediate']);
      assert.notEqual(failed.code, 0, failed.stderr);
      assert.equal(existsSync(join(dir, 'pgpitr_restore.inprogress')), false, failed.stderr);
      const again = await restoreWith(a, dir, ['--set', third.id, ...tsMap, '--target-immediate']);
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /resuming/);
    });

    await t.test('restore starts the WAL prefetch ahead of the server, as its user, for its own repository only', async () => {
      const dir = restoreDir(c, 'headstart');
      const tsMap = ['--tablespace-map', `${tsOid}=${join(restoreDir(c, 'headstart-ts'), 'ts')}`];
      const r = await restoreWith(a, dir, ['--set', third.id, ...tsMap, '--target-immediate', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const first = (JSON.parse(r.stdout) as { wal_needed: { first: string } }).wal_needed.first;
      // The restore's own spool: <spool>/restore-<digest of system, stanza, repository>.
      const conf = readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8');
      const restoreSpool = [/--spool-path ''([^']+)''/.exec(conf)?.[1] ?? ''];
      assert.match(restoreSpool[0]!, new RegExp(`^${a.spool.replace(/[.]/g, '\\.')}/restore-[0-9a-f]{16}$`), conf);
      const spoolDir = join(restoreSpool[0]!, 'main', 'archive-get');
      assert.match(conf, new RegExp(`restore_command = '\\[ -O ''${spoolDir.replace(/[.]/g, '\\.')}'' \\] && .* && mv ''${spoolDir.replace(/[.]/g, '\\.')}''/%f .*--system-id=\\d+'' `));
      for (let i = 0; i < 600 && !existsSync(join(spoolDir, first)); i++) await new Promise((res) => setTimeout(res, 100));
      assert.ok(existsSync(join(spoolDir, first)), `${first} was not prefetched: ${readdirSync(spoolDir).join(', ')}`);
      // restore ran as root into a directory the server's user owns: the fetcher and its files are that user's
      assert.equal(statSync(join(spoolDir, first)).uid, statSync(dir).uid);
      assert.equal(statSync(join(spoolDir, 'fetcher.log')).uid, statSync(dir).uid);
      // The same spool and stanza name for another repository: refused while that fetcher runs (exit 200,
      // which stops recovery), never served with the other repository's segments.
      const otherRepo = join(restoreDir(c, 'other-repo'), 'repo');
      await runCommand('cp', ['-a', a.repo, otherRepo]);
      const dest = join(restoreDir(c, 'other-get'), first);
      const system = /--system-id=(\d+)/.exec(conf)![1]!;
      const get = await runPgpitr(['archive-get', '--archive-async', '--spool-path', restoreSpool[0]!, '--repo', otherRepo, '--stanza', 'main', `--system-id=${system}`, first, dest]);
      assert.equal(get.code, 200, get.stderr);
      assert.match(get.stderr, /prefetch spool .* is in use by a fetcher .* for repository/);
      assert.equal(existsSync(dest), false);
    });

    await t.test('verify finds a flipped byte in a stored file and a deleted segment, each by path; check says a restore no longer reaches now', async () => {
      const ok = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const healthy = await runPgpitr(['check', ...a.repoArgs, '--backup-age-max', '1h'], env);
      assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);
      assert.match(healthy.stdout, new RegExp(`ok   recovery: a restore can reach WAL segment [0-9A-F]{24}, just archived: from backup ${third.id} `));
      assert.match(healthy.stdout, new RegExp(`ok   backup age: the newest restorable backup, ${third.id}, ended `));
      // --no-switch (monitoring): judged by the last segment the server archived; no new WAL.
      // The segment number of the write position itself: pg_walfile_name() names the segment before a
      // position on a boundary (where the switch above left it), and the next one once any record is
      // written (the background writer's every 15 s), which read as a switch here (seen once in CI).
      const segmentNow = async () => (await c.sql<{ s: string }>(`select floor((pg_current_wal_lsn() - '0/0'::pg_lsn) / pg_size_bytes(current_setting('wal_segment_size')))::text as s`))[0]!.s;
      const before = await segmentNow();
      const quiet = await runPgpitr(['check', ...a.repoArgs, '--no-switch', '--backup-age-max', '1h'], env);
      assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
      assert.match(quiet.stdout, /ok {3}archiving: [0-9A-F]{24}(\.[0-9A-F]{8}\.backup)?, the last file the server archived \(.*\), is in the repository/);
      assert.match(quiet.stdout, /ok {3}recovery: a restore can reach WAL segment /);
      assert.equal(await segmentNow(), before, 'check --no-switch switched WAL');
      assert.match(quiet.stdout, /ok {3}recovery: a restore can reach WAL segment [0-9A-F]{24}, the last archived: /);
      // The archiver's statistics reset (as a crash restart does): judged by archive_status's newest .done, not failed.
      await c.sql("select pg_stat_reset_shared('archiver')");
      const reset = await runPgpitr(['check', ...a.repoArgs, '--no-switch', '--backup-age-max', '1h'], env);
      assert.equal(reset.code, 0, reset.stdout + reset.stderr);
      assert.match(reset.stdout, /ok {3}archiving: warning: pg_stat_archiver is empty \(its statistics were reset, .*\): judged by archive_status, whose newest \.done file is /);
      assert.match(reset.stdout, /ok {3}recovery: a restore can reach WAL segment /);
      const stale = await runPgpitr(['check', ...a.repoArgs, '--backup-age-max', '0m'], env);
      assert.equal(stale.code, 7, stale.stdout + stale.stderr);
      assert.match(stale.stdout, /FAIL backup age: /);
      const setDir = join(a.repo, 'main', 'backup', third.id);
      const victim = listSetFiles(join(setDir, 'data')).sort((x, y) => statSync(y).size - statSync(x).size)[0]!;
      const bytes = readFileSync(victim);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      writeFileSync(victim, bytes);
      // restore's copier threads check what they write: the damaged file fails the restore, by path
      const damagedDir = restoreDir(c, 'damaged');
      const damagedTs = ['--tablespace-map', `${tsOid}=${join(restoreDir(c, 'damaged-ts'), 'ts')}`];
      const broken = await restoreWith(a, damagedDir, ['--set', third.id, ...damagedTs, '--target-immediate']);
      assert.equal(broken.code, 5, broken.stderr);
      assert.match(broken.stderr, new RegExp(`${victim.slice(setDir.length + 1).replace(/[.]/g, '\\.')}.*is damaged`));
      assert.equal(existsSync(join(damagedDir, 'global', 'pg_control')), false);
      const archiveSub = join(a.repo, 'main', 'archive', third.start_wal.slice(0, 16));
      const seg = readdirSync(archiveSub).find((n) => n.startsWith(third.start_wal))!;
      rmSync(join(archiveSub, seg));
      // Stored minutes ago: a gap closed by a segment stored within the minute is taken for pushes out of order.
      const ago = new Date(Date.now() - 300_000);
      for (const n of readdirSync(archiveSub)) utimesSync(join(archiveSub, n), ago, ago);
      const bad = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(bad.code, 7, bad.stdout + bad.stderr);
      assert.match(bad.stderr, new RegExp(`PROBLEM ${third.id}: .*${victim.slice(setDir.length + 1).replace(/[.]/g, '\\.')}.*is damaged`));
      // Each problem names its object once, quoted whole (the stored file's path, not the repository's alone).
      assert.match(bad.stderr, new RegExp(`PROBLEM ${third.id}: stored file "${victim.replace(/[.]/g, '\\.')}" of `));
      assert.match(bad.stderr, new RegExp(`PROBLEM ${third.id}: WAL segment ${third.start_wal}, needed to make backup ${third.id} consistent, is not in the archive`));
      // The segment is a gap in the archive too: recovery from the earlier backups cannot go past it (as check and info say).
      assert.match(bad.stderr, new RegExp(`PROBLEM archive: WAL missing from the archive: ${third.start_wal} \\(1 segment\\), archived WAL resumes at [0-9A-F]{24}: `));
      const badJson = JSON.parse((await runPgpitr(['verify', ...a.repoArgs, '--output', 'json'])).stdout) as { ok: boolean; archive_gaps: { from: string; missing: number }[] };
      assert.equal(badJson.ok, false);
      assert.deepEqual(badJson.archive_gaps.map((g) => [g.from, g.missing]), [[third.start_wal, 1]]);
      // info says the same before anyone tries: the backup cannot be restored, and how far the others reach.
      const info = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      type Window = { from: { backup: string }; to: { segment: string; timeline: number; archived_at: string | null } };
      const s = (JSON.parse(info.stdout) as { stanzas: { backups: { id: string; restorable: boolean; problem: string | null }[]; recovery_windows: Window[] }[] }).stanzas[0]!;
      const b3 = s.backups.find((b) => b.id === third.id)!;
      assert.equal(b3.restorable, false);
      assert.match(b3.problem!, new RegExp(`WAL segment ${third.start_wal} is missing`));
      assert.equal(s.backups.find((b) => b.id === first.id)!.restorable, true);
      assert.equal(s.recovery_windows.length, 1, info.stdout);
      assert.equal(s.recovery_windows[0]!.from.backup, first.id);
      assert.ok(s.recovery_windows[0]!.to.segment < third.start_wal && s.recovery_windows[0]!.to.archived_at !== null, info.stdout);
      const text = await runPgpitr(['info', ...a.repoArgs]);
      assert.match(text.stdout, new RegExp(`NOT RESTORABLE: the archive cannot reach the target: WAL segment ${third.start_wal} is missing`));
      assert.match(text.stdout, new RegExp(`recoverable: from .* \\(end of backup ${first.id}, LSN `));
      // check: archiving works, but the newest backup cannot be restored and the older ones stop at the gap.
      const unreachable = await runPgpitr(['check', ...a.repoArgs], env);
      assert.equal(unreachable.code, 7, unreachable.stdout + unreachable.stderr);
      assert.equal((await runPgpitr(['check', ...a.repoArgs, '--no-switch'], env)).code, 7);
      assert.match(unreachable.stdout, new RegExp(`FAIL recovery: no backup can be restored to the present \\(WAL segment [0-9A-F]{24}\\): the recovery window ends at segment ${s.recovery_windows[0]!.to.segment} on timeline 1; the newest backup, ${third.id}, cannot be restored: `));
    });

    await t.test('retention keeps the newest backups and the WAL from the oldest kept one on; history files stay', async () => {
      // The newest full's stored file gone (a lifecycle rule, a removal by hand): counted by the
      // policy, but the newest backup that can be restored stays too, with the WAL after it.
      const victim = listSetFiles(join(a.repo, 'main', 'backup', third.id, 'data'))[0]!;
      renameSync(victim, `${victim}.aside`);
      try {
        const dry = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--dry-run', '--output', 'json']);
        assert.equal(dry.code, 0, dry.stderr);
        const k = (JSON.parse(dry.stdout) as { keep: { id: string; why: string }[] }).keep;
        assert.match(k.find((x) => x.id === third.id)?.why ?? '', /it cannot be restored: the stored bytes of 1 file\(s\) are missing/, dry.stdout);
        assert.match(k.find((x) => x.id === second.id)?.why ?? '', /the newest complete backup that can be restored \(newer ones cannot\)/, dry.stdout);
      } finally {
        renameSync(`${victim}.aside`, victim);
      }
      const r = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '2', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const d = JSON.parse(r.stdout) as { expire: { id: string }[]; keep: { id: string }[] };
      assert.deepEqual(d.keep.map((k) => k.id).sort(), [second.id, third.id].sort());
      assert.ok(d.expire.some((e) => e.id === first.id));
      assert.equal(existsSync(join(a.repo, 'main', 'backup', first.id)), false);
      const info = JSON.parse((await runPgpitr(['info', ...a.repoArgs, '--output', 'json'])).stdout) as { stanzas: { archive: { timelines: { min: string }[] } }[] };
      assert.equal(info.stanzas[0]!.archive.timelines[0]!.min, second.start_wal);
    });

    await t.test('a backup taken from a standby restores the primary\'s data', async () => {
      const standbyDir = join(restoreDir(c, 'standby'), 'data');
      const standbyTs = join(restoreDir(c, 'standby-ts'), 'ts');
      const bb = await runPgpitr(['basebackup', '-D', standbyDir, '-X', 'stream', '-R', '-c', 'fast', '-T', `${tsDir}=${standbyTs}`], env);
      assert.equal(bb.code, 0, bb.stderr);
      chownTree(standbyTs);
      writeFileSync(join(standbyDir, 'postgresql.auto.conf'), readFileSync(join(standbyDir, 'postgresql.auto.conf'), 'utf8') + "archive_mode = 'off'\n");
      const standby = await TestCluster.startExisting(standbyDir, version, { name: `standby${version}` });
      try {
        await c.sql(`update pitr set v = 'from-standby' where id % 10 = 2`);
        const expected = await tableChecksum(c);
        for (let i = 0; i < 300 && (await tableChecksum(standby)) !== expected; i++) await new Promise((r) => setTimeout(r, 100));
        // The primary archives: it switches WAL while the standby's backup waits for its stop segment.
        const { code, stdout: out, stderr: err } = await backupFromStandby([...a.repoArgs, '--output', 'json'], standby.connectionEnv(), c);
        assert.equal(code, 0, err);
        const rec = JSON.parse(out) as Record & { backup_from: string };
        assert.equal(rec.backup_from, 'standby');
        const dir = restoreDir(c, 'from-standby');
        const r = await restoreWith(a, dir, ['--set', rec.id, '--tablespace-map', `${tsOid}=${join(restoreDir(c, 'from-standby-ts'), 'ts')}`, '--target-immediate', '--target-action', 'promote']);
        assert.equal(r.code, 0, r.stderr);
        const copy = await startRecovered(dir, version, `fromstandby${version}`);
        try {
          assert.equal(await tableChecksum(copy), expected);
        } finally {
          await copy.destroy();
        }
      } finally {
        await standby.destroy();
      }
    });

    await t.test('a manifest entry that would leave the target is refused before anything is written', async () => {
      const manifestPath = join(a.repo, 'main', 'backup', second.id, 'manifest.json');
      const text = readFileSync(manifestPath, 'utf8');
      // One changed byte (a path's): verify names the manifest, restore refuses before writing.
      const at = text.indexOf('"path":"base/') + 9;
      writeFileSync(manifestPath, text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ 1) + text.slice(at + 1));
      const v = await runPgpitr(['verify', ...a.repoArgs, '--set', second.id]);
      assert.equal(v.code, 7, v.stdout + v.stderr);
      assert.match(v.stdout + v.stderr, /manifest\.json" is damaged: its checksum does not match its content/);
      const flippedDir = join(restoreDir(c, 'flipped'), 'd');
      const flipped = await restoreWith(a, flippedDir, ['--set', second.id, '--target-immediate']);
      assert.equal(flipped.code, 5, flipped.stderr);
      assert.match(flipped.stderr, /manifest\.json" is damaged: its checksum does not match/);
      // A hostile manifest (its checksum left out, as an older format has none): each path is checked.
      const m = JSON.parse(text) as { files: { path: string }[]; manifest_sha256?: string; format_version: number };
      delete m.manifest_sha256;
      m.format_version = 3;
      m.files[3]!.path = '../../escaped';
      writeFileSync(manifestPath, JSON.stringify(m));
      const dir = join(restoreDir(c, 'evil'), 'd');
      mkdirSync(dir);
      // (A target: the archive has a gap since the test above, which a recovery to its end is refused for.)
      const r = await restoreWith(a, dir, ['--set', second.id, '--target-immediate']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /unsafe path "\.\.\/\.\.\/escaped"/);
      assert.deepEqual(readdirSync(dir), []);
    });

    await t.test('stanza-delete: says what it would remove without --force, is refused while a backup runs, finishes an interrupted delete, removes everything', async () => {
      const stanzaDir = join(a.repo, 'main');
      // Counting takes no lock: said while a backup holds the stanza (its lock, of a live process of this host).
      writeFileSync(join(stanzaDir, 'backup.lock'), JSON.stringify({ pid: process.pid, host: hostname(), command: 'backup' }));
      const dry = await runPgpitr(['stanza-delete', ...a.repoArgs]);
      assert.equal(dry.code, 2, dry.stderr);
      assert.match(dry.stderr, new RegExp(`would delete stanza "main" from repository .*: system \\d+, PostgreSQL ${version}; \\d+ backup\\(s\\) \\(.*${third.id}.*\\); \\d+ archived WAL file\\(s\\)`));
      assert.match(dry.stderr, /give --force to delete it/);
      assert.ok(existsSync(join(stanzaDir, 'stanza.json')) && existsSync(join(stanzaDir, 'backup', third.id)));
      // Deleting while that backup holds it: refused, nothing removed.
      const locked = await runPgpitr(['stanza-delete', ...a.repoArgs, '--force']);
      assert.equal(locked.code, 5, locked.stderr);
      assert.match(locked.stderr, /stanza "main" is locked by "backup"/);
      rmSync(join(stanzaDir, 'backup.lock'));
      assert.ok(existsSync(join(stanzaDir, 'stanza.json')));
      // A delete interrupted once the record was gone: no command sees a stanza (archive-get exits 200,
      // stopping a recovery), and the next stanza-delete removes the rest.
      const copy = join(restoreDir(c, 'stanza-delete'), 'repo');
      await runCommand('cp', ['-a', a.repo, copy]);
      rmSync(join(copy, 'main', 'stanza.json'));
      // (receive-wal's directory, of a repository it streamed into, is a stanza's too.)
      mkdirSync(join(copy, 'main', 'receive-wal'));
      writeFileSync(join(copy, 'main', 'receive-wal', '000000010000000000000009.partial'), '');
      const get = await runPgpitr(['archive-get', '--repo', copy, '--stanza', 'main', third.start_wal, join(restoreDir(c, 'stanza-delete'), 'seg')]);
      assert.equal(get.code, 200, get.stderr);
      // ... and stanza-create will not make a stanza over what is left (another cluster's WAL could be among it).
      const over = await runPgpitr(['stanza-create', '--repo', copy, '--stanza', 'main'], env);
      assert.equal(over.code, 5, over.stderr);
      assert.match(over.stderr, /stanza "main" has no record in repository .* but its directory holds \d+ file\(s\).*what an interrupted stanza-delete leaves/);
      assert.match(over.stderr, /hint: finish the delete first: pgpitr stanza-delete/);
      const rest = await runPgpitr(['stanza-delete', '--repo', copy, '--stanza', 'main', '--force']);
      assert.equal(rest.code, 0, rest.stderr);
      assert.match(rest.stderr, /deleted stanza "main" from repository .*: what an interrupted stanza-delete left/);
      assert.equal(existsSync(join(copy, 'main')), false);
      assert.equal((await runPgpitr(['stanza-delete', '--repo', copy, '--stanza', 'main', '--force'])).code, 6);
      // A stanza-create killed before renaming its record leaves only the record's temporary file: a rerun makes the stanza.
      mkdirSync(join(copy, 'main'));
      writeFileSync(join(copy, 'main', `stanza.json.tmp-${hostname()}-4194321-1`), '{');
      const remade = await runPgpitr(['stanza-create', '--repo', copy, '--stanza', 'main'], env);
      assert.equal(remade.code, 0, remade.stderr);
      assert.deepEqual(readdirSync(join(copy, 'main')).sort(), ['archive', 'stanza.json']);
      rmSync(join(copy, 'main'), { recursive: true });
      // A directory of the repository that never was a stanza (another repository below this one) is never removed by name.
      mkdirSync(join(copy, 'r2', 'archive'), { recursive: true });
      writeFileSync(join(copy, 'r2', 'pgpitr-repo.json'), '{}');
      const foreign = await runPgpitr(['stanza-delete', '--repo', copy, '--stanza', 'r2', '--force']);
      assert.equal(foreign.code, 5, foreign.stderr);
      assert.match(foreign.stderr, /"r2" in repository .* has no stanza record and holds what no stanza holds \(pgpitr-repo\.json\): it is not a stanza, and is left alone/);
      assert.ok(existsSync(join(copy, 'r2', 'pgpitr-repo.json')));
      // info over every stanza: one whose record cannot be read is said, the others still described (monitoring is not blinded).
      await runCommand('cp', ['-a', join(a.repo, 'main'), join(copy, 'good')]);
      mkdirSync(join(copy, 'bad'));
      writeFileSync(join(copy, 'bad', 'stanza.json'), '{ not json');
      const both = await runPgpitr(['info', '--repo', copy, '--output', 'json']);
      assert.notEqual(both.code, 0, both.stdout);
      const listed = (JSON.parse(both.stdout) as { stanzas: { stanza: string; error?: string; backups?: unknown[] }[] }).stanzas;
      assert.ok(listed.find((x) => x.stanza === 'good')?.backups?.length, both.stdout);
      assert.match(listed.find((x) => x.stanza === 'bad')?.error ?? '', /stanza\.json/);
      // A restored directory whose recovery has not run yet: its restore_command needs the stanza's WAL. Refused unless abandoned.
      const pending = restoreDir(c, 'pending-recovery');
      const restored = await restoreWith(a, pending, ['--target-immediate', '--tablespace-map-all', restoreDir(c, 'pending-ts')]);
      assert.equal(restored.code, 0, restored.stderr);
      const held = await runPgpitr(['stanza-delete', ...a.repoArgs, '--force']);
      assert.equal(held.code, 5, held.stderr);
      assert.match(held.stderr, /stanza "main" may still be needed by a recovery restored from it: .*pending-recovery/);
      assert.match(held.stderr, /give --abandon-recoveries as well/);
      assert.ok(existsSync(join(stanzaDir, 'stanza.json')));
      // The real one.
      const done = await runPgpitr(['stanza-delete', ...a.repoArgs, '--force', '--abandon-recoveries', '--output', 'json']);
      assert.equal(done.code, 0, done.stderr);
      const d = JSON.parse(done.stdout) as { repositories: { deleted: boolean; contents: { backups: string[] } }[] };
      assert.equal(d.repositories[0]!.deleted, true);
      assert.ok(d.repositories[0]!.contents.backups.includes(third.id));
      assert.equal(existsSync(join(stanzaDir, 'stanza.json')), false);
      const info = await runPgpitr(['info', '--repo', a.repo, '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      assert.deepEqual((JSON.parse(info.stdout) as { stanzas: { stanza: string }[] }).stanzas.map((x) => x.stanza), []);
      assert.equal((await runPgpitr(['info', ...a.repoArgs])).code, 6);
      // The cluster (still archiving here) gets a stanza again, empty.
      const again = await runPgpitr(['stanza-create', ...a.repoArgs], env);
      assert.equal(again.code, 0, again.stderr);
      chownTree(a.repo); // stanza-create ran as root here; the server's archive-push runs as postgres
      const checked = await runPgpitr(['check', ...a.repoArgs], env);
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    });
  });
}
