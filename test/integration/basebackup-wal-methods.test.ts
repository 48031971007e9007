// -X fetch / none / stream with temporary, named (-S) and created (-C) slots,
// and -R: each behaves as pg_basebackup's does. The -R backup starts as a
// streaming standby of its source and receives a row committed afterwards.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, verifyPlainBackup, readState, CLI } from '../helpers/pgpitr.js';

const WAL_FILE = /^[0-9A-F]{24}$/;

for (const version of versionsFromEnv()) {
  test(`WAL methods, slots and -R (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `wal${version}` });
    await createSampleData(src, { rows: 2000 });
    const env = clusterEnv(src);
    const slots = async () => (await src.sql<{ slot_name: string }>('select slot_name from pg_replication_slots order by 1')).map((r) => r.slot_name);

    await t.test('-X fetch includes the WAL in the backup', async () => {
      const out = src.tempDir('fetch');
      const r = await runPgpitr(['basebackup', '-D', out, '-X', 'fetch', '-c', 'fast'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readdirSync(join(out, 'pg_wal')).some((f) => WAL_FILE.test(f)));
      await verifyPlainBackup(out, version);
      assert.deepEqual(await slots(), []);
    });

    await t.test('-X none leaves pg_wal empty; the server\'s notice that archiving is off is shown, with -j too', async () => {
      const out = src.tempDir('none');
      const r = await runPgpitr(['basebackup', '-D', out, '-X', 'none', '-c', 'fast'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readdirSync(join(out, 'pg_wal')).filter((f) => WAL_FILE.test(f)).length, 0);
      await verifyPlainBackup(out, version, { noWal: true });
      assert.match(r.stderr, /NOTICE: {2}WAL archiving is not enabled/);
      const j = await runPgpitr(['basebackup', '-D', src.tempDir('none-j2'), '-X', 'none', '-c', 'fast', '-j', '2'], env);
      assert.equal(j.code, 0, j.stderr);
      assert.match(j.stderr, /NOTICE: {2}WAL archiving is not enabled/);
    });

    await t.test('-X stream uses a temporary slot that is gone afterwards', async () => {
      const out = src.tempDir('stream');
      const r = await runPgpitr(['basebackup', '-D', out, '-X', 'stream', '-c', 'fast', '-v'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /temporary replication slot "pgpitr_\d+"/);
      assert.deepEqual(await slots(), []);
      await verifyPlainBackup(out, version);
    });

    await t.test('--no-slot streams without a slot', async () => {
      const out = src.tempDir('noslot');
      const r = await runPgpitr(['basebackup', '-D', out, '--no-slot', '-c', 'fast', '-v'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /temporary replication slot/);
    });

    await t.test('-C -S creates a permanent slot that stays; -S reuses it', async () => {
      const out = src.tempDir('slot');
      const r = await runPgpitr(['basebackup', '-D', out, '-C', '-S', 'bk_slot', '-c', 'fast'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await slots(), ['bk_slot']);
      const again = await runPgpitr(['basebackup', '-D', src.tempDir('slot2'), '-S', 'bk_slot', '-c', 'fast'], env);
      assert.equal(again.code, 0, again.stderr);
      await src.sql("select pg_drop_replication_slot('bk_slot')");
    });

    await t.test('-R in tar format puts standby.signal and primary_conninfo in base.tar', async () => {
      const out = src.tempDir('tar-r');
      const r = await runPgpitr(['basebackup', '-D', out, '-Ft', '-R', '-c', 'fast'], env);
      assert.equal(r.code, 0, r.stderr);
      const list = await runCommand('tar', ['-tf', join(out, 'base.tar')]);
      assert.match(list.stdout, /^standby\.signal$/m);
      const conf = await runCommand('tar', ['-xOf', join(out, 'base.tar'), 'postgresql.auto.conf']);
      assert.match(conf.stdout, /primary_conninfo = '.*port=/);
      // As pg_basebackup 17+: the database given (here PGDATABASE) last, which slot synchronisation needs.
      if (version >= 17) assert.match(conf.stdout, /^primary_conninfo = '.* dbname=postgres'$/m);
      else assert.doesNotMatch(conf.stdout, /dbname=/);
    });

    await t.test('-D - writes one tar with the manifest inside to stdout', async () => {
      const file = join(src.tempDir('stdout'), 'backup.tar');
      const r = await runCommand('bash', ['-c', `'${process.execPath}' '${CLI}' basebackup -D - -Ft -X fetch -c fast > '${file}'`], { env: { ...process.env, ...env } });
      assert.equal(r.code, 0, r.stderr);
      const list = await runCommand('tar', ['-tf', file]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /^backup_manifest$/m);
      assert.match(list.stdout, /^PG_VERSION$/m);
      assert.match(list.stdout, /^pg_wal\/[0-9A-F]{24}$/m);
    });

    await t.test('-t blackhole and -t server:PATH (15+)', { skip: version < 15 && 'backup targets need PostgreSQL 15' }, async () => {
      const hole = await runPgpitr(['basebackup', '-t', 'blackhole', '-X', 'none', '-c', 'fast', '-v'], env);
      assert.equal(hole.code, 0, hole.stderr);
      assert.match(hole.stderr, /base backup completed/);
      const dir = join(src.tempDir('server-target'), 'b');
      const srv = await runPgpitr(['basebackup', '-t', `server:${dir}`, '-X', 'fetch', '-c', 'fast'], env);
      assert.equal(srv.code, 0, srv.stderr);
      assert.ok(readdirSync(dir).includes('base.tar'));
      assert.ok(readdirSync(dir).includes('backup_manifest'));
      // -z without a location, beside a target: the server compresses (pg_basebackup); -t client is -D's default said aloud.
      const gz = join(src.tempDir('server-target-gz'), 'b');
      const z = await runPgpitr(['basebackup', '-t', `server:${gz}`, '-X', 'fetch', '-c', 'fast', '-z'], env);
      assert.equal(z.code, 0, z.stderr);
      assert.ok(readdirSync(gz).includes('base.tar.gz'), readdirSync(gz).join(' '));
      const local = src.tempDir('client-target');
      const c = await runPgpitr(['basebackup', '-t', 'client', '-D', local, '-X', 'none', '-c', 'fast'], env);
      assert.equal(c.code, 0, c.stderr);
      assert.ok(readdirSync(local).includes('PG_VERSION'));
    });

    await t.test('-R makes a backup that starts as a streaming standby', async () => {
      const out = src.tempDir('standby');
      const r = await runPgpitr(['basebackup', '-D', out, '-R', '-C', '-S', 'standby_slot', '-c', 'fast'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readState(out).status, 'complete');
      const auto = readFileSync(join(out, 'postgresql.auto.conf'), 'utf8');
      assert.match(auto, /primary_slot_name = 'standby_slot'/);
      const standby = await TestCluster.startExisting(out, version, { name: `standby${version}` });
      assert.equal((await standby.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r, true);
      await src.sql('create table after_backup(x int); insert into after_backup values (42)');
      let seen = false;
      for (let i = 0; i < 100 && !seen; i++) {
        try {
          seen = (await standby.sql<{ x: number }>('select x from after_backup'))[0]?.x === 42;
        } catch {
          /* table not replayed yet */
        }
        if (!seen) await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(seen, 'the standby did not receive a row committed on the primary');
      const active = await src.sql<{ active: boolean }>("select active from pg_replication_slots where slot_name = 'standby_slot'");
      assert.equal(active[0]?.active, true);
      await standby.stop();
    });
  });
}
