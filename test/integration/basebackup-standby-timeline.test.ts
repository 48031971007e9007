// A backup of a standby right after a failover (issue 10's drop-in, as pg_basebackup): the standby
// follows its promoted upstream onto timeline 2, but until it replays the new primary's first
// checkpoint (spread: here slowed down), its restartpoints, where its backups start, stay on
// timeline 1. `basebackup -X stream` then starts on timeline 1 and ends on timeline 2: the WAL
// stream goes on along timeline 2 when the server ends timeline 1, as pg_basebackup's does, and
// the backup verifies, starts and holds what the new primary wrote.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { runPgbenchInit } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, readState, verifyPlainBackup } from '../helpers/pgpitr.js';

async function eventually(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`${what} (after ${ms} ms)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A streaming standby of `upstream`, made by pgpitr basebackup -R, with `conf`. */
async function standbyOf(upstream: TestCluster, version: number, name: string, conf: Record<string, string> = {}): Promise<TestCluster> {
  const dir = join(upstream.tempDir(name), 'data');
  const bb = await runPgpitr(['basebackup', '-D', dir, '-X', 'stream', '-R', '-c', 'fast'], clusterEnv(upstream));
  assert.equal(bb.code, 0, bb.stderr);
  return TestCluster.startExisting(dir, version, { name: `${name}${version}`, conf });
}

async function caughtUp(upstream: TestCluster, standby: TestCluster): Promise<void> {
  const target = (await upstream.sql<{ l: string }>(`select case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end::text l`))[0]!.l;
  await eventually(`${standby.name} did not catch up`, async () => (await standby.sql<{ ok: boolean }>(`select coalesce(pg_last_wal_replay_lsn() >= '${target}'::pg_lsn, false) ok`))[0]!.ok);
}

// One version: 15, whose pg_verifybackup judges the backup; what is tested is pgpitr's stream.
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`basebackup -X stream of a standby that followed its upstream's promotion: from timeline 1 to 2, verified, starts (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const primary = await TestCluster.create({ version, name: `tlp${version}` });
    // The standby to promote writes its buffers slowly: its first checkpoint as a primary takes minutes.
    const middle = await standbyOf(primary, version, 'tlm', { checkpoint_timeout: '1h', max_wal_size: '4GB', bgwriter_lru_maxpages: '0' });
    const leaf = await standbyOf(middle, version, 'tll');
    await runPgbenchInit(primary, 3); // dirty buffers in the middle standby, which it has not written
    await caughtUp(primary, middle);
    await caughtUp(middle, leaf);
    await middle.sql('select pg_promote(true)');
    await middle.sql('create table after_promotion as select g from generate_series(1, 5000) g');
    await caughtUp(middle, leaf);
    await eventually('the leaf did not follow timeline 2', async () => (await leaf.sql<{ t: number }>('select received_tli as t from pg_stat_wal_receiver'))[0]?.t === 2);

    for (const format of [['-Fp'], ['-Ft']]) {
      await t.test(`basebackup ${format.join(' ')} -X stream from the leaf`, async () => {
        const target = join(leaf.tempDir(`b${format[0]}`), 'b');
        const r = await runPgpitr(['basebackup', '-D', target, ...format, '-X', 'stream', '-c', 'fast', '-v'], clusterEnv(leaf));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(readState(target).status, 'complete');
        if (format[0] === '-Ft') {
          assert.ok(existsSync(join(target, 'pg_wal.tar')));
          return;
        }
        const label = readFileSync(join(target, 'backup_label'), 'utf8');
        // What this test is about: the backup starts on timeline 1 (else the promotion's checkpoint was replayed already).
        assert.match(label, /^START TIMELINE: 1$/m, label);
        assert.match(r.stderr, /timeline 1 ends at [0-9A-F]+\/[0-9A-F]+: WAL streaming goes on along timeline 2/);
        const wal = readdirSync(join(target, 'pg_wal'));
        assert.ok(wal.includes('00000002.history'), wal.join(' '));
        assert.ok(wal.some((n) => n.startsWith('00000001')) && wal.some((n) => n.startsWith('00000002') && n.length === 24), wal.join(' '));
        await verifyPlainBackup(target, version);
        rmSync(join(target, 'standby.signal'), { force: true });
        const copy = await TestCluster.startExisting(target, version, { name: `tlc${version}` });
        assert.deepEqual(await copy.sql('select count(*)::int n from after_promotion'), [{ n: 5000 }]);
        assert.deepEqual(await copy.sql('select timeline_id >= 2 as ok from pg_control_checkpoint()'), [{ ok: true }]);
        await copy.stop();
      });
    }
  });
}
