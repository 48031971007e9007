// receive-wal as a cluster's only WAL archiving, in synchronous mode, and the primary lost: a
// restore to the end of the archive gets every acknowledged commit, those still in the segment
// receive-wal was receiving too (archive-get hands that .partial over after the archive's last
// segment, as a DBA would copy it into pg_wal), and a restore to a time in that segment (the
// moment before a mistake) is planned with it and reaches it. The same on every version: the
// newest proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, chownTree } from '../helpers/pgpitr.js';
import { startReceiver, until } from '../helpers/receive-wal.js';
import { startRecovered, tableChecksum } from '../helpers/pitr.js';

for (const version of versionsFromEnv().slice(-1)) {
  test(`restore after the primary is lost gets what synchronous receive-wal acknowledged (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const c = await TestCluster.create({ version, name: `rwr${version}`, conf: { wal_keep_size: '1GB' } });
    const env = clusterEnv(c);
    const repo = c.tempDir('repo');
    const repoArgs = ['--repo', repo, '--stanza', 'main'];
    assert.equal((await runPgpitr(['stanza-create', ...repoArgs], env)).code, 0);
    await c.sql("alter system set synchronous_standby_names = 'pgpitr_sync'");
    await c.sql('select pg_reload_conf()');
    let expected = '';
    let beforeMistake = '';
    let mistakeAt = '';
    const rx = startReceiver([...repoArgs, '--synchronous', '-d', 'application_name=pgpitr_sync'], env);
    try {
      await until('a synchronous standby', async () => (await c.sql<{ s: string }>("select sync_state as s from pg_stat_replication where application_name = 'pgpitr_sync'"))[0]?.s === 'sync');
      await c.sql('create table pitr (id int primary key, v text)');
      await c.sql(`insert into pitr select g, 'before the backup' from generate_series(1, 500) g`);
      const b = await runPgpitr(['backup', ...repoArgs, '--start-fast'], env);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      // check knows the receiver by what it reports (no replay position), whatever its application_name.
      const chk = await runPgpitr(['check', ...repoArgs], env);
      assert.equal(chk.code, 0, chk.stdout + chk.stderr);
      assert.match(chk.stdout + chk.stderr, /a WAL receiver streams from this server/);
      // Monitoring (--no-switch): the archiver reports nothing; judged by what the receiver stored.
      const quiet = await runPgpitr(['check', ...repoArgs, '--no-switch'], env);
      assert.equal(quiet.code, 0, quiet.stdout + quiet.stderr);
      assert.match(quiet.stdout, /the stanza's newest segment is [0-9A-F]{24}; the server writes/);
      // A stanza the receiver does not feed: failed, pointing at receive-wal (not at archive_command).
      assert.equal((await runPgpitr(['stanza-create', '--repo', repo, '--stanza', 'other'], env)).code, 0);
      const other = await runPgpitr(['check', '--repo', repo, '--stanza', 'other', '--no-switch'], env);
      assert.equal(other.code, 7, other.stdout + other.stderr);
      assert.match(other.stdout, /the stanza's newest segment is none: no receiver stores what it receives into this repository/);
      assert.match(other.stdout, /look at receive-wal's output/);
      // Acknowledged by receive-wal (synchronous commit): in the segment it is receiving, not archived.
      for (let i = 0; i < 5; i++) await c.sql(`insert into pitr values (${1000 + i}, 'acknowledged')`);
      beforeMistake = await tableChecksum(c);
      mistakeAt = (await c.sql<{ t: string }>('select clock_timestamp()::text as t'))[0]!.t;
      await c.sql('delete from pitr where id <= 250');
      expected = await tableChecksum(c);
      await c.stop('immediate');
    } finally {
      await rx.stop();
    }
    const partial = readdirSync(join(repo, 'main', 'receive-wal')).find((n) => n.endsWith('.partial'));
    assert.ok(partial !== undefined, 'receive-wal keeps the segment it was receiving');
    chownTree(repo);

    const dir = c.tempDir('restored');
    const r = await runPgpitr(['restore', ...repoArgs, '--spool-path', c.tempDir('spool'), '-D', dir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const copy = await startRecovered(dir, version, `rwrc${version}`);
    try {
      assert.equal(await tableChecksum(copy), expected, 'every acknowledged commit is back');
      // Received in part (uncompressed, it has a segment's size): never to be archived under the whole name.
      assert.ok(existsSync(join(dir, 'pg_wal', 'archive_status', `${partial.replace('.partial', '')}.done`)), 'the received part is marked archived in pg_wal');
    } finally {
      await copy.destroy();
    }

    // The moment before the mistake, in the segment receive-wal was receiving: planned, reached.
    const dir2 = c.tempDir('restored-before');
    const r2 = await runPgpitr(['restore', ...repoArgs, '--spool-path', c.tempDir('spool2'), '-D', dir2, '--target-time', mistakeAt, '--target-action', 'promote']);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    assert.match(r2.stdout + r2.stderr, /WAL segment [0-9A-F]{24} \(in part\) is not archived yet: receive-wal received it/);
    const copy2 = await startRecovered(dir2, version, `rwrt${version}`);
    try {
      assert.equal(await tableChecksum(copy2), beforeMistake, 'the state before the mistake is back');
    } finally {
      await copy2.destroy();
    }
  });
}
