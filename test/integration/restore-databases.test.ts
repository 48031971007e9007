// Selective restore: --db-include restores one database of a cluster that
// holds two, to a point after the backup. The other's files are written as
// sparse files of zeros (nothing read, no block allocated); recovery replays
// WAL that wrote into both databases after the backup and ends; the database
// restored holds exactly its data, and the one left out is dropped. On a
// cluster without data checksums or wal_log_hints, where WAL marks pages
// all-visible without their image, restore refuses unless
// ignore_invalid_pages=on is given, and with it recovery ends (and the log
// shows the references it would otherwise have stopped at). What is
// tested is which files pgpitr writes and how, the same on every version: the
// newest tested version proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import type { TestCluster } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { binDir } from '../harness/pg-versions.js';
import { asPostgres, runCommand } from '../harness/run.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived } from '../helpers/pitr.js';

async function checksum(c: TestCluster, database: string): Promise<string> {
  const r = await c.sql<{ sum: string; n: number }>(`select md5(string_agg(id::text || ':' || v, ',' order by id)) as sum, count(*)::int as n from t`, [], { database });
  return `${r[0]!.n}:${r[0]!.sum}`;
}

for (const version of versionsFromEnv().slice(-1)) {
  test(`restore --db-include (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `dbsel${version}`);
    const { c } = a;
    for (const db of ['app', 'other']) {
      await c.sql(`create database ${db}`);
      await c.sql(`create table t (id int primary key, v text); insert into t select g, repeat('${db}', 20) from generate_series(1, 20000) g`, [], { database: db });
    }
    // A hash index in app: its cleanup logs pages without their image, so app cannot be left out.
    await c.sql('create index t_hash on t using hash (v)', [], { database: 'app' });
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    // WAL into both databases after the backup, on both sides of a checkpoint.
    for (const db of ['app', 'other']) await c.sql(`update t set v = 'changed' where id % 7 = 0; insert into t values (30000, 'after')`, [], { database: db });
    await c.sql('checkpoint');
    for (const db of ['app', 'other']) await c.sql(`update t set v = 'again' where id % 11 = 0; create table later (x int); insert into later values (1)`, [], { database: db });
    // With data checksums, marking pages all-visible carries their images too.
    for (const db of ['app', 'other']) await c.sql('vacuum t', [], { database: db });
    const expected = await checksum(c, 'app');
    const otherOid = (await c.sql<{ oid: number }>(`select oid::int as oid from pg_database where datname = 'other'`))[0]!.oid;
    await switchAndWaitArchived(c);
    await c.stop();

    await t.test('a name the backup does not hold is refused before anything is written', async () => {
      const dir = restoreDir(c, 'refused');
      const r = await restoreWith(a, dir, ['--db-include', 'nope']);
      assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /--db-include nope: backup \S+ holds no such database/);
      const standby = await restoreWith(a, dir, ['--db-include', 'app', '--standby']);
      assert.equal(standby.code, 2, standby.stderr);
      assert.match(standby.stderr, /--standby cannot restore part of the databases/);
      assert.match(r.stderr, /app \(oid \d+\)/);
      assert.deepEqual(readdirSync(dir), []);
    });

    await t.test('a database with hash indexes is not left out without ignore_invalid_pages', async () => {
      const dir = restoreDir(c, 'hash');
      const r = await restoreWith(a, dir, ['--db-include', 'other']);
      assert.equal(r.code, 7, r.stderr);
      assert.match(r.stderr, /cannot be restored in part safely: database\(s\) app hold hash indexes/);
      assert.deepEqual(readdirSync(dir), []);
    });

    await t.test('only app is restored; other is zeros until dropped', async () => {
      const dir = restoreDir(c, 'app-only');
      const r = await restoreWith(a, dir, ['--db-include', 'app']);
      assert.equal(r.code, 0, r.stderr);
      const out = r.stdout + r.stderr;
      assert.match(out, /databases left out, their files written as zeros .*: other/);
      assert.match(out, new RegExp(`those of oid ${otherOid} \\("other" when the backup was taken\\); their names now: SELECT oid, datname FROM pg_database WHERE oid IN \\(${otherOid}\\)`));
      const otherDir = join(dir, 'base', String(otherOid));
      const files = readdirSync(otherDir).map((n) => statSync(join(otherDir, n)));
      assert.ok(files.some((s) => s.size > 100_000), 'the left-out database keeps its files\' sizes');
      assert.ok(files.every((s) => s.blocks === 0), 'the left-out database\'s files are holes');

      const copy = await startRecovered(dir, version, `dbsel-copy${version}`);
      try {
        assert.equal(await checksum(copy, 'app'), expected, copy.logTail());
        assert.equal((await copy.sql<{ n: number }>('select count(*)::int as n from later', [], { database: 'app' }))[0]!.n, 1);
        assert.doesNotMatch(copy.log(), /is uninitialized|invalid pages/);
        await copy.sql('drop database other');
        const names = (await copy.sql<{ datname: string }>('select datname from pg_database order by 1')).map((x) => x.datname);
        assert.deepEqual(names, ['app', 'postgres', 'template0', 'template1']);
      } finally {
        await copy.destroy();
      }
    });
  });

}

// pg_checksums --disable makes the cluster without checksums: Debian's PostgreSQL 15 has it (the
// npm builds of the other versions do not).
for (const version of versionsFromEnv().filter((v) => v === 15)) {
  test(`restore --db-include of a cluster without data checksums (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `dbnock${version}`);
    const { c } = a;
    await c.stop();
    const off = asPostgres(join(binDir(version), 'pg_checksums'), ['--disable', '-D', c.dataDir]);
    const r0 = await runCommand(off.cmd, off.args);
    assert.equal(r0.code, 0, r0.stderr);
    await c.start();
    assert.equal((await c.sql<{ v: string }>(`select current_setting('data_checksums') as v`))[0]!.v, 'off');
    for (const db of ['app', 'other']) {
      await c.sql(`create database ${db}`);
      await c.sql(`create table t (id int primary key, v text); insert into t select g, repeat('${db}', 20) from generate_series(1, 20000) g`, [], { database: db });
    }
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    // VACUUM marks the pages all-visible: logged without the heap pages' images.
    for (const db of ['app', 'other']) await c.sql('vacuum t', [], { database: db });
    await c.sql(`insert into t values (30000, 'after')`, [], { database: 'app' });
    const expected = await checksum(c, 'app');
    await switchAndWaitArchived(c);
    await c.stop();

    await t.test('refused, naming the reason and the way to accept it', async () => {
      const dir = restoreDir(c, 'refused');
      const r = await restoreWith(a, dir, ['--db-include', 'app']);
      assert.equal(r.code, 7, r.stderr);
      assert.match(r.stderr, /cannot be restored in part safely: its server has neither data checksums nor wal_log_hints/);
      assert.match(r.stderr, /--recovery-option ignore_invalid_pages=on/);
      assert.deepEqual(readdirSync(dir), []);
    });

    await t.test('with ignore_invalid_pages=on, recovery ends and app holds its data', async () => {
      const dir = restoreDir(c, 'accepted');
      const r = await restoreWith(a, dir, ['--db-include', 'app', '--recovery-option', 'ignore_invalid_pages=on']);
      assert.equal(r.code, 0, r.stderr);
      const copy = await startRecovered(dir, version, `dbnock-copy${version}`);
      try {
        assert.equal(await checksum(copy, 'app'), expected, copy.logTail());
        assert.match(copy.log(), /WAL contains references to invalid pages|is uninitialized/, 'recovery met pages of the database left out');
        await copy.sql('drop database other');
      } finally {
        await copy.destroy();
      }
    });
  });
}
