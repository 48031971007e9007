// Parallel backup by the sql read method (-j N --read-method=sql: the files read
// through pg_read_binary_file over N connections), on every supported version:
// with a pgbench load running, -j 1, 2 and 4 give plain backups that
// pg_verifybackup (our manifest check for 17+) accepts, that start, and whose
// pgbench tables hold the balance invariant; a tablespace relocated with -T is
// part of it. On 15 and 18: a non-superuser role with the documented grants
// backs up the same way, --read-method=auto taking sql since the role may not
// see data_directory (its paths are then relative to the data directory); a
// role lacking a grant is refused before anything is written, with the GRANT
// named (auto: with the reasons of both methods) and no backup left on the
// server; -j beyond max_connections is refused before the backup starts.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData, runPgbenchInit } from '../harness/data.js';
import { compatVersionsFromEnv, versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, verifyPlainBackup, readState, chownTree } from '../helpers/pgpitr.js';
import { pgbenchBalanced, startPgbenchLoad } from '../helpers/pgbench-load.js';
import { Session } from '../../src/protocol/session.js';
import { resolveConnectionSettings } from '../../src/protocol/conninfo.js';
import { listDataDirectory } from '../../src/backup/parallel/pgdata-walk.js';
import { listDataDirectoryBySql } from '../../src/backup/parallel/sql-listing.js';
import type { ListedTablespace } from '../../src/backup/parallel/listing.js';

/** What must agree between the two listings (modes and mtimes come from elsewhere in each). */
function comparable(list: ListedTablespace[]): string[] {
  return list.flatMap((t) => [
    `ts ${t.oid} ${t.location} ${t.bytes}`,
    ...t.entries.map((e) => (e.kind === 'file' ? `f ${e.name} ${e.manifestPath} ${e.size} ${e.blockBase}` : e.kind === 'link' ? `l ${e.name} ${e.target}` : `d ${e.name}`)),
  ]);
}

for (const version of compatVersionsFromEnv()) {
  test(`sql read method -j 1, 2, 4 under pgbench load: verified, starts, balanced (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `sqlr${version}` });
    const tsDir = src.tempDir('ts1');
    await createSampleData(src, { rows: 5000, tablespaceDir: tsDir });
    await runPgbenchInit(src, 2);
    await src.sql('create unlogged table ul as select g from generate_series(1, 1000) g');
    await src.sql('checkpoint');
    const env = clusterEnv(src);

    // Before any load: the SQL listing is the direct walk's, entry for entry.
    const opts = { serverVersionNum: version * 10000, verifyChecksums: true, ...(version < 15 ? { statsTempDir: 'pg_stat_tmp' } : {}) };
    const session = await Session.open(resolveConnectionSettings({}, env), 'none', 'listing');
    try {
      const bySql = await listDataDirectoryBySql(session, { ...opts, root: src.dataDir });
      assert.deepEqual(comparable(bySql), comparable(listDataDirectory(src.dataDir, opts)));
      const unlogged = (await src.sql<{ p: string }>("select pg_relation_filepath('ul') p"))[0]!.p;
      const names = bySql.flatMap((t) => t.entries.map((e) => e.name));
      assert.ok(names.includes(`${unlogged}_init`) && !names.includes(unlogged), 'an unlogged relation is sent as its init fork only');
    } finally {
      session.close();
    }

    const load = startPgbenchLoad(src);

    await load.running();
    try {
      // Each -j on PGPITR_TEST_VERSIONS; -j 2 alone on the other versions, whose differences
      // (backup start/stop, file access) do not depend on the number of workers.
      for (const jobs of versionsFromEnv().includes(version) ? [1, 2, 4] : [2]) {
        const target = join(src.tempDir('backups'), `j${jobs}`);
        const newTs = join(src.tempDir('relocated'), `ts-j${jobs}`);
        const r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-j', String(jobs), '--read-method', 'sql', '-T', `${tsDir}=${newTs}`, '-v'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`reading files with ${jobs} workers? through SQL`));
        assert.equal(readState(target).status, 'complete');
        await verifyPlainBackup(target, version);
        const oid = (await src.sql<{ oid: string }>("select oid::text from pg_tablespace where spcname = 'ts1'"))[0]!.oid;
        assert.equal(readlinkSync(join(target, 'pg_tblspc', oid)), newTs);
        const slots = await src.sql<{ n: string }>('select count(*)::text n from pg_replication_slots');
        assert.equal(slots[0]!.n, '0');
        chownTree(newTs);
        const restored = await TestCluster.startExisting(target, version, { name: `sqlr${version}j${jobs}` });
        await pgbenchBalanced(restored);
        await restored.destroy();
      }
      assert.ok(load.transactions() > 0, 'the pgbench load ran no transaction');
    } finally {
      load.stop();
    }
  });
}

for (const version of versionsFromEnv()) {
  test(`sql read method as a non-superuser with the grants, and the refusal naming a missing grant (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    // Few connections: -j beyond them must be refused.
    const src = await TestCluster.create({ version, name: `sqlg${version}`, conf: { max_connections: '20' } });
    const tsDir = src.tempDir('ts1');
    await createSampleData(src, { rows: 1000, tablespaceDir: tsDir });
    await runPgbenchInit(src, 1);
    const start = version >= 15 ? ['pg_backup_start(text,boolean)', 'pg_backup_stop(boolean)'] : ['pg_start_backup(text,boolean,boolean)', 'pg_stop_backup(boolean,boolean)'];
    await src.sql('create role backupper login replication');
    await src.sql('grant pg_read_server_files to backupper');
    for (const f of ['pg_read_binary_file(text,bigint,bigint,boolean)', 'pg_ls_dir(text,boolean,boolean)', 'pg_stat_file(text,boolean)', ...start]) {
      await src.sql(`grant execute on function ${f} to backupper`);
    }
    const env = { ...clusterEnv(src), PGUSER: 'backupper' };

    const load = startPgbenchLoad(src);

    await load.running();
    const target = join(src.tempDir('backups'), 'granted');
    const newTs = join(src.tempDir('relocated'), 'ts');
    let r;
    try {
      // auto: this role may not see data_directory, so cannot read it directly; it may read through SQL (the tablespace through its pg_tblspc link).
      r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-j', '2', '--read-method', 'auto', '-T', `${tsDir}=${newTs}`, '-v'], env);
    } finally {
      load.stop();
    }
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /through SQL .* from "\." on the server/);
    await verifyPlainBackup(target, version);
    chownTree(newTs);
    const restored = await TestCluster.startExisting(target, version, { name: `sqlg${version}r` });
    await pgbenchBalanced(restored);
    await restored.destroy();

    // Without EXECUTE on pg_read_binary_file: refused, naming the grant; nothing written, no backup left running.
    await src.sql('revoke execute on function pg_read_binary_file(text,bigint,bigint,boolean) from backupper');
    const refusedTarget = join(src.tempDir('backups'), 'refused');
    const bad = await runPgpitr(['basebackup', '-D', refusedTarget, '-Fp', '-Xstream', '-c', 'fast', '-j', '2', '--read-method', 'sql'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /GRANT EXECUTE ON FUNCTION pg_read_binary_file\(text,bigint,bigint,boolean\) TO backupper;/);
    assert.equal(existsSync(refusedTarget), false, 'the refused backup left its target');
    // auto: neither method, both reasons given.
    const neither = await runPgpitr(['basebackup', '-D', refusedTarget, '-Fp', '-Xstream', '-j', '2'], env);
    assert.notEqual(neither.code, 0);
    assert.match(neither.stderr, /cannot read the data directory directly \(.*data_directory.*\), nor through SQL \(role "backupper" lacks EXECUTE on pg_read_binary_file/);
    assert.equal(existsSync(refusedTarget), false, 'the refused backup left its target');
    const left = await src.sql<{ n: string }>("select count(*)::text n from pg_stat_activity where application_name like 'pgpitr%' or backend_type = 'walsender'");
    assert.equal(left[0]!.n, '0');
    const slots = await src.sql<{ n: string }>('select count(*)::text n from pg_replication_slots');
    assert.equal(slots[0]!.n, '0');
    // A backup can be started now (the refused run left none that would be in the way).
    await src.sql(version >= 15 ? "select pg_backup_start('probe', true)" : "select pg_start_backup('probe', true, false)");

    // -j beyond what max_connections allows: refused before the backup starts.
    const many = await runPgpitr(['basebackup', '-D', join(src.tempDir('backups'), 'many'), '-Fp', '-Xstream', '-j', '20', '--read-method', 'sql'], clusterEnv(src));
    assert.notEqual(many.code, 0);
    assert.match(many.stderr, /-j 20 needs 20 more connections/);
  });
}

for (const version of versionsFromEnv().filter((v) => v >= 14).slice(-1)) {
  test(`a role's idle_session_timeout, statement_timeout and (17+) transaction_timeout do not end a -j backup, by either read method (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `sqlto${version}` });
    await runPgbenchInit(src, 2);
    await src.sql('create role timed login replication superuser');
    // The backup's SQL session sits idle while the files are copied (slowed to a few seconds by -r).
    await src.sql("alter role timed set idle_session_timeout = '300ms'");
    await src.sql("alter role timed set statement_timeout = '300ms'");
    if (version >= 17) await src.sql("alter role timed set transaction_timeout = '300ms'");
    const env = { ...clusterEnv(src), PGUSER: 'timed' };
    for (const method of ['direct', 'sql']) {
      const target = join(src.tempDir('backups'), method);
      const r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-j', '2', '-r', '12M', '--read-method', method], env);
      assert.equal(r.code, 0, `${method}: ${r.stderr}`);
      await verifyPlainBackup(target, version);
    }
  });
}
