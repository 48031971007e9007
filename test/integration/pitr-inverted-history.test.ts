// A point-in-time recovery in place to a point before an earlier fork, following the latest
// timeline (restore's default): recovery follows timeline 2's history but stops on timeline 1,
// before timeline 2 began, and PostgreSQL writes timeline 3's history with a switchpoint going
// backwards ("1 <y>", then "2 <x>", x before y). Timeline 1 ended at x on that branch, not at y:
// a backup of timeline 1 that ended between x and y is the abandoned future. Found by a black-box
// run (13 and 18, after a failover and a switchover): restore chose such a backup, and the server
// refused to start ("requested timeline 3 is not a child of this server's history"); expire kept it
// as "the newest backup the newest timeline can be restored from" and removed the one that is.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';
import { parseLsn } from '../../src/postgres/lsn.js';

// One version: the history is PostgreSQL's and the same on every version; the choice is pgpitr's.
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`a restore in place to a point before an earlier fork: restore and expire read timeline 3's history as PostgreSQL does (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `inv${version}`);
    const { c } = a;
    const backup = async (env: NodeJS.ProcessEnv) => {
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], env);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { id: string }).id;
    };
    const step = async (db: typeof c, n: number, point: string) => {
      await db.sql(`insert into pitr select g, '${point}' from generate_series(${n * 1000 + 1}, ${n * 1000 + 100}) g`);
      await db.sql(`select pg_create_restore_point('${point}')`);
      return tableChecksum(db);
    };
    await c.sql('create table pitr (id int primary key, v text)');
    const b1 = await backup(c.connectionEnv());
    const atX = await step(c, 1, 'x');
    const b1b = await backup(c.connectionEnv()); // timeline 1, after x, before y
    await step(c, 2, 'y');
    await switchAndWaitArchived(c);
    await c.stop();

    // Timeline 2: back to y, promoted, archiving into the stanza.
    const two = restoreDir(c, 'two');
    assert.equal((await restoreWith(a, two, ['--target-name', 'y', '--target-action', 'promote'])).code, 0);
    const copy2 = await startRecovered(two, version, `inv2-${version}`, { archive: true });
    await step(copy2, 3, 'z');
    await switchAndWaitArchived(copy2);
    await copy2.destroy();

    // Timeline 3: back to x with the defaults (following timeline 2, the latest), promoted, archiving.
    const three = restoreDir(c, 'three');
    const r3 = await restoreWith(a, three, ['--target-name', 'x', '--target-action', 'promote']);
    assert.equal(r3.code, 0, r3.stderr);
    const copy3 = await startRecovered(three, version, `inv3-${version}`, { archive: true });
    assert.equal(await tableChecksum(copy3), atX);
    const history = readFileSync(join(three, 'pg_wal', '00000003.history'), 'utf8').split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split('\t'));
    assert.deepEqual(history.map((h) => h[0]), ['1', '2'], 'timeline 3 followed timeline 2');
    assert.ok(parseLsn(history[1]![1]!) < parseLsn(history[0]![1]!), `the history goes backwards: ${JSON.stringify(history)}`);
    const atW = await step(copy3, 4, 'w');
    await switchAndWaitArchived(copy3);
    await copy3.destroy();

    // The newest backup that ended before the target, b1b, ended past x on timeline 1: not on
    // timeline 3's branch. A minute after timeline 3 began, restore cannot tell it from a copy's
    // doing: it says so and writes nothing (after ten minutes it would pass it over for b1).
    const dry = await restoreWith(a, restoreDir(c, 'dry'), ['--dry-run']);
    assert.notEqual(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, new RegExp(`backup ${b1b} \\(timeline 1, stop [0-9A-F/]+\\) is not on the branch of timeline 3: timeline 3 forked from timeline 1 at ${history[1]![1]}`));
    const dir = restoreDir(c, 'end');
    const r = await restoreWith(a, dir, ['--set', b1]);
    assert.equal(r.code, 0, r.stderr);
    const back = await startRecovered(dir, version, `invend-${version}`);
    try {
      assert.equal(await tableChecksum(back), atW);
    } finally {
      await back.destroy();
    }
    // expire keeps b1, the backup timeline 3 is restored from, with the WAL after it.
    const ex = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--dry-run', '--output', 'json']);
    assert.equal(ex.code, 0, ex.stderr);
    const d = JSON.parse(ex.stdout) as { keep: { id: string; why: string }[]; expire: { id: string }[] };
    assert.ok(d.keep.some((k) => k.id === b1), ex.stdout);
    assert.ok(d.keep.some((k) => k.id === b1 && /newest timeline's history can be restored from|being restored/.test(k.why)), ex.stdout);
  });
}
