// The README's first command: the point-in-time-recovery story on a throwaway
// PostgreSQL 15 cluster. WAL is archived through pgpitr archive-push; a backup
// is taken into the repository while pgbench writes; the load goes on; the
// tables are fingerprinted and the time noted; then someone drops a table by
// mistake. pgpitr restores to just before the accident, PostgreSQL replays the
// archived WAL through pgpitr archive-get, and the demo proves that the table,
// and every row committed before the accident, are back.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../dist/test/harness/cluster.js';
import { runPgbenchInit, tableChecksums } from '../dist/test/harness/data.js';
import { clientToolDir } from '../dist/test/harness/pg-versions.js';
import { chownTree } from '../dist/test/helpers/pgpitr.js';

const root = new URL('..', import.meta.url).pathname;
const setup = spawnSync('bash', [join(root, 'scripts/setup-test-env.sh')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(1);

const CLI = join(root, 'dist/src/cli/main.js');
const say = (m) => console.log(`\n== ${m}`);
const pgpitr = (args, env = {}) => {
  console.log(`$ pgpitr ${args.map((a) => (/^[A-Za-z0-9_/.,:@%+=-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}`);
  const r = spawnSync(process.execPath, [CLI, ...args], { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`pgpitr ${args[0]} exited with ${r.status}`);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

try {
  say('a throwaway PostgreSQL 15 cluster, archiving its WAL through pgpitr archive-push');
  const src = await TestCluster.create({ version: 15, name: 'demo' });
  const repo = src.tempDir('repo');
  const env = src.connectionEnv();
  const push = `'${process.execPath}' '${CLI}' archive-push --repo '${repo}' --stanza main %p`;
  await src.sql(`alter system set archive_mode = 'on'`);
  await src.sql(`alter system set archive_command = '${push.replace(/'/g, "''")}'`);
  await src.restart();
  console.log(`archive_command = '${push}'`);
  pgpitr(['stanza-create', '--repo', repo, '--stanza', 'main'], env);
  chownTree(repo);
  await runPgbenchInit(src, 10);

  say('a backup into the repository, taken while pgbench writes');
  const pgbench = (seconds) =>
    spawn(join(clientToolDir(), 'pgbench'), ['-n', '-c', '2', '-T', String(seconds), 'postgres'], { env: { ...process.env, ...env }, stdio: 'ignore' });
  const load = pgbench(8);
  const loadDone = new Promise((r) => load.on('exit', r));
  await sleep(1000);
  pgpitr(['backup', '--repo', repo, '--stanza', 'main', '--start-fast', '--annotation', 'taken-by=demo'], env);
  await loadDone;
  const more = pgbench(3);
  await new Promise((r) => more.on('exit', r));

  say('the state just before the accident: every table fingerprinted, the time noted');
  const before = await tableChecksums(src);
  const [{ t: safeTime }] = await src.sql(`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as t`);
  for (const [t, sum] of Object.entries(before)) console.log(`  ${t.padEnd(28)} ${sum.split(':')[0]} rows`);
  console.log(`  time: ${safeTime}`);
  await sleep(500);

  const [{ now }] = await src.sql(`select to_char(clock_timestamp() at time zone 'UTC', 'HH24:MI:SS') as now`);
  say(`${now} UTC, the accident: DROP TABLE pgbench_accounts (and the writes go on for a while)`);
  await src.sql('drop table pgbench_accounts');
  await src.sql(`insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 1, 0, now())`);
  // The WAL up to the accident reaches the archive (as it would within archive_timeout).
  const [{ wal }] = await src.sql(`select pg_walfile_name(pg_switch_wal()) as wal`);
  for (let i = 0; i < 600; i++) {
    const [{ last }] = await src.sql(`select coalesce(last_archived_wal, '') as last from pg_stat_archiver`);
    if (last.slice(0, 24) >= wal) break;
    await sleep(200);
  }
  pgpitr(['info', '--repo', repo, '--stanza', 'main']);
  await src.stop();

  say(`restore to just before the accident: --target-time '${safeTime}'`);
  const target = src.tempDir('restored');
  pgpitr(['restore', '--repo', repo, '--stanza', 'main', '-D', target, '--spool-path', src.tempDir('spool'), '--target-time', safeTime, '--target-action', 'promote']);

  say('PostgreSQL replays the archived WAL through pgpitr archive-get and stops at that time');
  const restored = await TestCluster.startExisting(target, 15, { name: 'demo-restored' });
  for (let i = 0; i < 600; i++) {
    const [{ r }] = await restored.sql('select pg_is_in_recovery() as r');
    if (!r) break;
    await sleep(200);
  }
  const after = await tableChecksums(restored);
  let same = true;
  for (const [t, sum] of Object.entries(before)) {
    const ok = after[t] === sum;
    same &&= ok;
    console.log(`  ${t.padEnd(28)} ${(after[t] ?? 'missing:').split(':')[0]} rows  ${ok ? 'identical to before the accident' : 'DIFFERENT'}`);
  }
  if (!same || Object.keys(after).length !== Object.keys(before).length) throw new Error('the restored cluster differs from the state before the accident');
  say('demo complete: pgbench_accounts is back, with every row committed before the accident, and nothing after it');
} catch (e) {
  console.error(`demo failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await destroyAll();
}
