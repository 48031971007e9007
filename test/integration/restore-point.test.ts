// A named restore point is found in the archived WAL before anything is written,
// so restore picks the backup that reaches it, as PostgreSQL will replay it:
// - a point older than the newest backup: the newest backup taken before it (the
//   newest backup would replay to the end of the archive and fail);
// - a name written twice: from the newest backup, the first one after its start;
//   with --set naming an older backup, the first one after that backup's start
//   (what PostgreSQL stops at, checked by starting the copy);
// - a name the archive does not hold (a typo, a point not archived yet): refused,
//   nothing written; so is a target time after the archive's last transaction.
// The record format is the same on every version (the PITR matrix restores to a
// name on 13-18): tested here on the newest of PGPITR_TEST_VERSIONS.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

const version = versionsFromEnv().at(-1)!;

test(`restore to a named restore point picks the backup that reaches it (PostgreSQL ${version})`, async (t) => {
  t.after(() => destroyAll());
  const a = await archivingCluster(version, `rp${version}`);
  const { c } = a;
  const backup = async (): Promise<string> => {
    const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], c.connectionEnv());
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { id: string }).id;
  };
  const batch = (n: number) => c.sql(`insert into pitr select g, md5(g::text) from generate_series(${n * 100 + 1}, ${n * 100 + 100}) g`);
  await c.sql('create table pitr (id int primary key, v text)');
  const first = await backup();
  await batch(1);
  await c.sql(`select pg_create_restore_point('before_migration')`);
  const atMigration = await tableChecksum(c);
  await batch(2);
  await c.sql(`select pg_create_restore_point('daily')`);
  const atDaily1 = await tableChecksum(c);
  await batch(3);
  // Backup ids have a resolution of one second.
  await new Promise((r) => setTimeout(r, 1100));
  const second = await backup();
  await batch(4);
  await c.sql(`select pg_create_restore_point('daily')`);
  const atDaily2 = await tableChecksum(c);
  await batch(5);
  await switchAndWaitArchived(c);

  const recovered = async (name: string, args: string[], backupId: string, expect: string) => {
    const dir = restoreDir(c, name);
    const r = await restoreWith(a, dir, [...args, '--target-action', 'promote']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`backup ${backupId} \\(`), r.stderr);
    assert.match(r.stderr, /restore point "[a-z_]+" found at [0-9A-F]+\/[0-9A-F]+ on timeline 1, written 20\d\d-/);
    const copy = await startRecovered(dir, version, `${name}${version}`);
    try {
      assert.equal(await tableChecksum(copy), expect, copy.logTail());
    } finally {
      await copy.destroy();
    }
  };

  await t.test('a point before the newest backup: the newest backup taken before it', () => recovered('migration', ['--target-name', 'before_migration'], first, atMigration));
  await t.test('a name written twice: the first after the newest backup that reaches one', () => recovered('daily', ['--target-name', 'daily'], second, atDaily2));
  await t.test('--set an older backup: the first of the name after its start, where PostgreSQL stops', () => recovered('daily-set', ['--target-name', 'daily', '--set', first], first, atDaily1));

  await t.test('--dry-run says where the point is', async () => {
    const dir = join(restoreDir(c, 'dry'), 'data');
    const r = await restoreWith(a, dir, ['--dry-run', '--target-name', 'before_migration', '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { backup: string; restore_point: { name: string; lsn: string; timeline: number; time: string } };
    assert.equal(plan.backup, first);
    assert.equal(plan.restore_point.name, 'before_migration');
    assert.equal(plan.restore_point.timeline, 1);
    assert.match(plan.restore_point.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.ok(!Number.isNaN(Date.parse(plan.restore_point.time)));
    assert.equal(existsSync(dir), false);
    // Found from the restore point index: archiving recorded what each segment holds.
    const said = await restoreWith(a, dir, ['--dry-run', '--target-name', 'before_migration']);
    assert.equal(said.code, 0, said.stderr);
    const counts = /looking for restore point "before_migration": (\d+) segment\(s\) known from the restore point index, (\d+) read/.exec(said.stderr);
    assert.ok(counts && Number(counts[1]) > 0 && Number(counts[2]) <= 2, said.stderr);
    assert.doesNotMatch(said.stderr, /could not be/);
    // Without the index (an archive of an earlier pgpitr): the archive is read, the plan is the same.
    const index = join(a.repo, 'main', 'restore-points');
    const kept = `${index}.kept`;
    renameSync(index, kept);
    try {
      const read = await restoreWith(a, dir, ['--dry-run', '--target-name', 'before_migration', '--output', 'json']);
      assert.equal(read.code, 0, read.stderr);
      assert.deepEqual(JSON.parse(read.stdout), plan);
      const text = await restoreWith(a, dir, ['--dry-run', '--target-name', 'before_migration']);
      assert.doesNotMatch(text.stderr, /restore point index/);
    } finally {
      // (A push meanwhile may have made the directory again.)
      if (!existsSync(index)) renameSync(kept, index);
      else {
        cpSync(kept, index, { recursive: true });
        rmSync(kept, { recursive: true, force: true });
      }
    }
  });

  await t.test('a target time after the last transaction archived: refused until its WAL is archived', async () => {
    const dir = restoreDir(c, 'time');
    await batch(6);
    const target = (await c.sql<{ t: string }>(`select clock_timestamp()::text as t`))[0]!.t;
    const refused = await restoreWith(a, dir, ['--target-time', target]);
    assert.equal(refused.code, 6, refused.stderr);
    assert.match(refused.stderr, /target time .* is after the last transaction the archive holds \(a commit at 20\d\d-[^,]+, [0-9A-F]+\/[0-9A-F]+, in [0-9A-F]{24}\)/);
    assert.match(refused.stderr, /switch WAL on the primary/);
    assert.deepEqual(readdirSync(dir), []);
    await batch(7);
    await switchAndWaitArchived(c);
    const dry = await restoreWith(a, join(dir, 'data'), ['--dry-run', '--target-time', target]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, new RegExp(`backup ${second} \\(`));
  });

  await t.test('a commit whose record begins at the end of one segment and ends in the next counts as the last transaction (black-box run U1)', async () => {
    const dir = restoreDir(c, 'straddle');
    const before = (await c.sql<{ t: string }>(`select clock_timestamp()::text as t`))[0]!.t;
    // The commit of this block begins 24 bytes before a segment boundary: its time is in the next segment.
    // Before, such a record made a doubt that let any later target through, and recovery then failed.
    const [placed] = await c.sql<{ lsn: string }>(`
      do $$
      declare seg numeric := (select setting::numeric from pg_settings where name = 'wal_segment_size'); d numeric; m numeric; n int := 0;
      begin
        insert into pitr values (100000, 'straddle');
        loop
          d := seg - mod(pg_current_wal_insert_lsn() - '0/0'::pg_lsn, seg);
          exit when d = 24;
          n := n + 1;
          if n > 60 then raise exception 'could not place the commit: % bytes left', d; end if;
          if d > 8100 then m := least(floor((d - 8000) * 0.99), 4000000);
          elsif d - 24 >= 56 then m := d - 24 - 54; if m >= 256 then m := d - 24 - 57; end if;
          else m := 200; end if;
          perform pg_logical_emit_message(false, 'p', repeat('x', m::int));
        end loop;
        perform set_config('pgpitr.placed', pg_current_wal_insert_lsn()::text, false);
      end $$;
      select current_setting('pgpitr.placed') as lsn`);
    await switchAndWaitArchived(c);
    const after = (await c.sql<{ t: string }>(`select clock_timestamp()::text as t`))[0]!.t;
    const refused = await restoreWith(a, dir, ['--target-time', after]);
    assert.equal(refused.code, 6, refused.stderr);
    assert.match(refused.stderr, new RegExp(`is after the last transaction the archive holds \\(a commit at 20\\d\\d-[^,]+, ${placed!.lsn.replace('/', '\\/')}, in [0-9A-F]{24}\\)`));
    assert.deepEqual(readdirSync(dir), []);
    const dry = await restoreWith(a, join(dir, 'data'), ['--dry-run', '--target-time', before]);
    assert.equal(dry.code, 0, dry.stderr);
  });

  await t.test('a name the archive does not hold, or not yet: refused, nothing written', async () => {
    const dir = restoreDir(c, 'missing');
    const refused = async (name: string) => {
      const r = await restoreWith(a, dir, ['--target-name', name]);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, new RegExp(`restore point "${name}" is not in the archive after the start of any of the 2 backups looked at \\(oldest: ${first}\\)`));
      assert.match(r.stderr, /switch WAL on the primary/);
      assert.deepEqual(readdirSync(dir), []);
    };
    await refused('Before_Migration');
    await c.sql(`select pg_create_restore_point('just_now')`);
    await refused('just_now');
    await switchAndWaitArchived(c);
    const found = await restoreWith(a, join(dir, 'data'), ['--dry-run', '--target-name', 'just_now']);
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stderr, new RegExp(`backup ${second} \\(`));
  });
});
