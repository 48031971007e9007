// An in-place tablespace (allow_in_place_tablespaces, PostgreSQL 15+: pg_tblspc/<oid> is a
// directory of the data directory, not a link) is backed up as part of the base and restored
// into an empty directory and by --delta: the restored cluster holds its table. What is tested is
// where pgpitr writes, the same on every version that has the option: the newest proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { runCommand } from '../harness/run.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { CLI, runPgpitr, verifyPlainBackup } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

for (const version of versionsFromEnv().filter((v) => v >= 15).slice(-1)) {
  test(`restore of an in-place tablespace (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `inplace${version}`);
    const { c } = a;
    await c.sql('alter system set allow_in_place_tablespaces = on');
    await c.sql('select pg_reload_conf()');
    await c.sql(`create tablespace inplace location ''`);
    await c.sql('create table pitr (id int primary key, v text) tablespace inplace');
    await c.sql(`insert into pitr select g, 'base' from generate_series(1, 1000) g`);
    const oid = (await c.sql<{ oid: string }>(`select oid::text from pg_tablespace where spcname = 'inplace'`))[0]!.oid;
    assert.ok(lstatSync(join(c.dataDir, 'pg_tblspc', oid)).isDirectory());
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    await c.sql(`insert into pitr select g, 'after' from generate_series(1001, 1200) g`);
    const expected = await tableChecksum(c);
    await switchAndWaitArchived(c);
    await c.stop();

    const dir = restoreDir(c, 'data');
    const r = await restoreWith(a, dir, []);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lstatSync(join(dir, 'pg_tblspc', oid)).isDirectory(), 'a directory, as in the source');
    assert.ok(readdirSync(join(dir, 'pg_tblspc', oid)).some((n) => n.startsWith('PG_')));
    const copy = await startRecovered(dir, version, `inplace-a${version}`);
    try {
      assert.equal(await tableChecksum(copy), expected, copy.logTail());
      await copy.sql(`insert into pitr values (5000, 'diverged')`);
    } finally {
      await copy.stop();
    }
    // --delta over the copy that diverged: the backup's state again, the in-place tablespace included.
    const d = await restoreWith(a, dir, ['--delta']);
    assert.equal(d.code, 0, d.stderr);
    const again = await startRecovered(dir, version, `inplace-b${version}`);
    try {
      assert.equal(await tableChecksum(again), expected, again.logTail());
    } finally {
      await again.destroy();
    }
  });
}

// 16+ servers announce an in-place tablespace on its own, at the relative location pg_tblspc/<oid>:
// pg_basebackup extracts it under the target. It was written relative to the working directory
// (data outside the backup, whose state file said complete).
for (const version of versionsFromEnv().filter((v) => v >= 16).slice(-1)) {
  test(`basebackup -Fp of an in-place tablespace writes it under the target (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const c = await TestCluster.create({ version, name: `bbinplace${version}`, conf: { allow_in_place_tablespaces: 'on' } });
    await c.sql(`create tablespace inplace location ''`);
    await c.sql(`create table pitr (id int primary key, v text) tablespace inplace`);
    await c.sql(`insert into pitr select g, 'row' || g from generate_series(1, 2000) g`);
    const expected = await tableChecksum(c);
    const oid = (await c.sql<{ oid: string }>(`select oid::text from pg_tablespace where spcname = 'inplace'`))[0]!.oid;
    const cwd = c.tempDir('bb-cwd');
    const target = join(c.tempDir('bb'), 'copy');
    const r = await runCommand(process.execPath, [CLI, 'basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast'], { env: { ...process.env, ...c.connectionEnv() }, cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(cwd), [], 'nothing written into the working directory');
    assert.ok(lstatSync(join(target, 'pg_tblspc', oid)).isDirectory());
    assert.ok(readdirSync(join(target, 'pg_tblspc', oid)).some((n) => n.startsWith('PG_')));
    await verifyPlainBackup(target, version);
    const copy = await startRecovered(target, version, `bbinplace-copy${version}`);
    try {
      assert.equal(await tableChecksum(copy), expected, copy.logTail());
    } finally {
      await copy.destroy();
    }
  });
}
