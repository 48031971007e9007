// restore --standby: a replica built from the repository, as a DBA builds one
// to add a standby without loading the primary with a base backup. With
// --recovery-option primary_conninfo it streams from the primary once the
// archive is replayed; without it, it follows the archive alone (restore says
// so), fetching each new segment as the primary archives it. --archive-mode off
// keeps a restored copy, once promoted, from archiving into the production
// stanza. What is tested is the settings pgpitr writes and its archive-get in
// standby mode, the same on every version: the newest tested version proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { clusterEnv, runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

async function waitFor(what: string, check: () => Promise<boolean>, log: () => string, seconds = 60): Promise<void> {
  for (let i = 0; i < seconds * 5; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${what} did not happen in ${seconds} s:\n${log()}`);
}

for (const version of versionsFromEnv().slice(-1)) {
  test(`restore --standby, --recovery-option, --archive-mode off (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `sby${version}`);
    const { c } = a;
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, 'base' from generate_series(1, 1000) g`);
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    await c.sql(`insert into pitr select g, 'after the backup' from generate_series(1001, 1100) g`);
    await switchAndWaitArchived(c);

    await t.test('a standby that streams from its primary, and does not archive once promoted', async () => {
      const dir = restoreDir(c, 'streaming');
      const conninfo = `host=${c.host} port=${c.port} user=postgres application_name=restored_standby`;
      const r = await restoreWith(a, dir, ['--standby', '--recovery-option', `primary_conninfo=${conninfo}`, '--archive-mode', 'off']);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /has no primary_conninfo/);
      assert.ok(existsSync(join(dir, 'standby.signal')));
      assert.ok(!existsSync(join(dir, 'recovery.signal')));
      const auto = readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8');
      assert.match(auto, new RegExp(`^primary_conninfo = '${conninfo}'$`, 'm'));
      assert.match(auto, /^archive_mode = 'off'$/m);
      assert.match(auto, /^recovery_target_timeline = 'latest'$/m);

      const standby = await TestCluster.startExisting(dir, version, { name: `sbys${version}` });
      try {
        assert.equal((await standby.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r, true);
        assert.equal((await standby.sql<{ m: string }>(`select current_setting('archive_mode') as m`))[0]!.m, 'off');
        // Streaming: the primary sees it, and a row committed now (not yet archived) reaches it.
        await waitFor('streaming from the primary', async () => (await c.sql<{ s: string }>(`select state as s from pg_stat_replication where application_name = 'restored_standby'`))[0]?.s === 'streaming', () => standby.logTail());
        await c.sql(`insert into pitr values (5000, 'streamed')`);
        const expected = await tableChecksum(c);
        await waitFor('the row streamed to the standby', async () => (await tableChecksum(standby)) === expected, () => standby.logTail());

        // Promoted, it starts timeline 2 and writes, but archives nothing into the stanza.
        await standby.sql('select pg_promote()');
        await waitFor('promotion', async () => !(await standby.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r, () => standby.logTail());
        await standby.sql(`insert into pitr values (6000, 'on the copy')`);
        await standby.sql('select pg_switch_wal()');
        await new Promise((res) => setTimeout(res, 2000));
        assert.equal((await standby.sql<{ n: string }>('select archived_count::text as n from pg_stat_archiver'))[0]!.n, '0');
        const archive = readdirSync(join(a.repo, 'main', 'archive'));
        assert.ok(!archive.some((n) => n.startsWith('00000002')), `the promoted copy archived into the stanza: ${archive.join(', ')}`);
      } finally {
        await standby.destroy();
      }
    });

    await t.test('a standby without primary_conninfo follows the archive', async () => {
      const dir = restoreDir(c, 'archive-only');
      const r = await restoreWith(a, dir, ['--standby']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /the standby has no primary_conninfo: it will replay WAL from the archive only/);
      // Never started by a test that would archive: the copy must not archive into the stanza.
      const standby = await TestCluster.startExisting(dir, version, { name: `sbya${version}`, conf: { archive_mode: 'off' } });
      try {
        assert.equal((await standby.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r, true);
        // Written on the primary after the standby started: it arrives only through the archive.
        await c.sql(`insert into pitr values (7000, 'archived later')`);
        const expected = await tableChecksum(c);
        await switchAndWaitArchived(c);
        await waitFor('the archived segment replayed on the standby', async () => (await tableChecksum(standby)) === expected, () => standby.logTail(), 120);
        assert.match(standby.log(), /restored log file "[0-9A-F]{24}" from archive/);
        // check against it: a standby with archive_mode on (it archives once promoted) passes, archiving
        // judged on its primary (no WAL switch tried), the restores the stanza allows judged here.
        await standby.sql("alter system set archive_mode = 'on'");
        await standby.restart();
        const chk = await runPgpitr(['check', ...a.repoArgs], clusterEnv(standby));
        assert.equal(chk.code, 0, chk.stdout + chk.stderr);
        assert.match(chk.stdout + chk.stderr, /archive_mode is on, and the server is a standby: it archives once promoted \(its primary does now\)/);
        assert.match(chk.stdout + chk.stderr, /the server is a standby: the stanza's newest WAL segment is [0-9A-F]{24}, where it replayed up to [0-9A-F]+\/[0-9A-F]+; archiving itself is judged on its primary \(pgpitr check there\)/);
        assert.match(chk.stdout + chk.stderr, /a restore can reach WAL segment/);
      } finally {
        await standby.destroy();
      }
    });

    await t.test('restore refuses a --recovery-option that would bypass its checks, before writing anything', async () => {
      const dir = restoreDir(c, 'refused');
      const r = await restoreWith(a, dir, ['--recovery-option', 'recovery_target_time=2026-12-01 11:45:00+00']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /recovery_target_time: restore writes it from its own options/);
      assert.match(r.stderr, /--target-time/);
      assert.deepEqual(readdirSync(dir), []);
    });
  });
}
