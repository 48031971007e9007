// What the benchmarks that set pgpitr against pgBackRest on one cluster share
// (repo-backup.mjs, incremental.mjs, time-to-recover.mjs): a PostgreSQL 15
// cluster loaded by pgbench, a repository for each tool (pgBackRest's
// configured in its own file), both stanzas created, and archive_command
// running both tools' archive-push, so that each tool's backups find their WAL
// in their own archive. The archiver has caught up with the load when it returns.

import { spawnSync } from 'node:child_process';
import { chownSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measured, mkdirPg, pgGid, pgUid } from './as-postgres.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const PGPITR = join(ROOT, 'dist/src/cli/main.js');
export const PGBIN = '/usr/lib/postgresql/15/bin';
const { TestCluster } = await import(join(ROOT, 'dist/test/harness/cluster.js'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * name: the cluster's; scale: pgbench's; pgbackrest: lines of pgBackRest's [global] section
 * besides the repository, logs and locks (e.g. 'archive-async=n', 'start-fast=y', or sections of its own).
 */
export async function twoToolCluster({ name, scale, pgbackrest }) {
  const c = await TestCluster.create({ version: 15, name, conf: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  const env = c.connectionEnv();
  const work = mkdirPg(c.tempDir('bench'));
  const pRepo = mkdirPg(join(work, 'pgpitr-repo'));
  const bRepo = mkdirPg(join(work, 'pgbr-repo'));
  const bMisc = mkdirPg(join(work, 'pgbr-misc'));
  const conf = join(work, 'pgbackrest.conf');
  writeFileSync(conf, [
    '[global]', `repo1-path=${bRepo}`, 'compress-type=zst', 'log-level-console=warn', 'log-level-stderr=warn', 'log-level-file=off',
    `log-path=${bMisc}`, `lock-path=${bMisc}`, `spool-path=${bMisc}`, ...pgbackrest, '',
    '[bench]', `pg1-path=${c.dataDir}`, `pg1-socket-path=${env.PGHOST}`, `pg1-port=${env.PGPORT}`, 'pg1-user=postgres', '',
  ].join('\n'));
  chownSync(conf, pgUid, pgGid);
  const bArgs = [`--config=${conf}`, '--stanza=bench'];
  const pArgs = ['--repo', pRepo, '--stanza', 'bench'];
  const pushes = {
    pgbackrest: `pgbackrest --config=${conf} --stanza=bench archive-push %p`,
    pgpitr: `'${process.execPath}' '${PGPITR}' archive-push --repo '${pRepo}' --stanza bench %p`,
  };
  /** archive_command with `tool`'s archive-push first: a backup waits for its stop segment in its own archive, not behind the other tool's push. */
  const archiveFirst = async (tool) => {
    const chain = tool === 'pgpitr' ? `${pushes.pgpitr} && ${pushes.pgbackrest}` : `${pushes.pgbackrest} && ${pushes.pgpitr}`;
    await c.sql(`alter system set archive_command = '${chain.replace(/'/g, "''")}'`);
    await c.sql('select pg_reload_conf()');
    await sleep(300);
  };
  /** Switches to a new segment and waits until the archiver has archived the one it ended. */
  const switchAndWaitArchived = async () => {
    const [{ wal }] = await c.sql('select pg_walfile_name(pg_switch_wal()) as wal');
    for (let i = 0; i < 6000; i++) {
      const [{ last }] = await c.sql(`select coalesce(last_archived_wal, '') as last from pg_stat_archiver`);
      if (last.slice(0, 24) >= wal) return wal;
      await sleep(200);
    }
    throw new Error(`the archiver did not reach ${wal}`);
  };
  await c.sql(`alter system set archive_mode = 'on'`);
  await archiveFirst('pgbackrest');
  await c.restart();
  measured(process.execPath, [PGPITR, 'stanza-create', ...pArgs], env);
  measured('pgbackrest', [...bArgs, 'stanza-create'], env);
  const init = spawnSync(join(PGBIN, 'pgbench'), ['-i', '-q', '-s', String(scale)], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(init.stderr);
  await c.sql('vacuum analyze');
  await c.sql('checkpoint');
  // Otherwise the first backup measured waits for the load's WAL backlog in the archive.
  await switchAndWaitArchived();
  return { c, env, work, pRepo, bRepo, bMisc, conf, pArgs, bArgs, archiveFirst, switchAndWaitArchived };
}
