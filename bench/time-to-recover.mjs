#!/usr/bin/env node
// Benchmark: the time users feel when they recover. From the start of
// `restore` to a cluster promoted at a named restore point ~100 archived
// segments after the backup: restore, WAL fetched by restore_command and
// replayed, promotion. pgpitr (restore_command through its asynchronous
// prefetch, the default) against pgBackRest (archive-async=y), same cluster,
// same WAL, same run. Reports median wall seconds, the ratio (target 0.8) and
// the peak RSS of the restore commands into bench/RESULTS.md.
//
//   node bench/time-to-recover.mjs [--scale N] [--segments N] [--runs N] [--warmup N] [--shared-buffers LIST] [--floor] [--out FILE]
//
// --warmup: rounds run first and not counted (default 1: each tool, and the floor, once). The
// first recovery after the setup (the load, the archiving, the backups) is slower for every tool
// (2026-12-05: restore 4.5-5.4 s against 1.7-2.7, replay 10 s against 6.5, the floor too), and
// without a round first it fell on whichever tool the alternation put first.
//
// --floor: also measures what no restore tool can go below on this machine: the same
// restored cluster started with every WAL segment it needs already in pg_wal and a
// restore_command that answers at once (`false`: PostgreSQL then reads pg_wal), timed
// from the server's start to the promotion (the restore itself untimed).
//
// --shared-buffers: the restored server's shared_buffers, one measurement per value
// (default 32MB,4GB: the test harness's setting, and a size in the range PostgreSQL's
// documentation suggests for a dedicated server, 25% of memory on a small one). Replay of the pgbench load
// evicts and rereads pages all the time with 32 MB; both tools replay the same WAL with the same
// server, so the setting moves the share of the time that is the tools' own.
//
// Needs a built tree, PostgreSQL 15 from Debian, pgbackrest (apt-get install pgbackrest),
// /usr/bin/time, root (tools run as `postgres`, as they would on a server).

import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection } from './results-file.mjs';
import { log, measured, median, mkdirPg } from './as-postgres.mjs';
import { PGBIN, PGPITR, twoToolCluster } from './two-tools.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const { TestCluster, destroyAll } = await import(join(ROOT, 'dist/test/harness/cluster.js'));

const opt = { scale: 100, segments: 100, runs: 2, warmup: 1, sharedBuffers: ['32MB', '4GB'], floor: false, out: join(HERE, 'RESULTS.md') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--scale') opt.scale = Number(argv[++i]);
  else if (a === '--segments') opt.segments = Number(argv[++i]);
  else if (a === '--runs') opt.runs = Number(argv[++i]);
  else if (a === '--warmup') opt.warmup = Number(argv[++i]);
  else if (a === '--shared-buffers') opt.sharedBuffers = argv[++i].split(',');
  else if (a === '--floor') opt.floor = true;
  else if (a === '--out') opt.out = resolve(argv[++i]);
  else {
    process.stderr.write('usage: node bench/time-to-recover.mjs [--scale N] [--segments N] [--runs N] [--warmup N] [--shared-buffers LIST] [--floor] [--out FILE]\n');
    process.exit(2);
  }
}

/** Names of the WAL segments stored under an archive directory (any depth). */
const archivedSegments = (dir) =>
  readdirSync(dir, { recursive: true })
    .map((p) => /(?:^|\/)([0-9A-F]{24})-[0-9a-f]{64}(?:\.[a-z0-9]+)?$/.exec(String(p))?.[1])
    .filter((n) => n !== undefined)
    .sort();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const walOf = async (c) => (await c.sql('select pg_current_wal_lsn()::text as l'))[0].l;
const lsnBytes = (l) => {
  const [hi, lo] = l.split('/');
  return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
};

/** Per shared_buffers value, per tool, the runs. */
const results = Object.fromEntries(opt.sharedBuffers.map((sb) => [sb, { pgpitr: [], pgbackrest: [], floor: [] }]));
const started = new Date();
let replayInfo = '';
try {
  log(`PostgreSQL 15, pgbench scale ${opt.scale}, ${opt.segments} segments of WAL after the backup`);
  // pgBackRest archives synchronously, as pgpitr's plain archive-push does; its archive-get is asynchronous.
  const { c, env, work, pRepo, bMisc, pArgs, bArgs, switchAndWaitArchived } = await twoToolCluster({
    name: 'benchttr', scale: opt.scale,
    pgbackrest: ['start-fast=y', 'process-max=2', '', '[global:archive-push]', 'archive-async=n', '', '[global:archive-get]', 'archive-async=y'],
  });
  const pSpool = mkdirPg(join(work, 'pgpitr-spool'));

  log('backups (zstd, both tools)');
  // Each tool's parallel backup (its stored form is what restore reads: pgpitr's readers compress
  // 1 MiB frames that restore can cut a large file at).
  const pb = JSON.parse(measured(process.execPath, [PGPITR, 'backup', ...pArgs, '--start-fast', '-j', '2', '--compress-type', 'zstd', '--output', 'json'], env).out);
  const pgpitrSet = pb.id;
  measured('pgbackrest', [...bArgs, '--type=full', '--compress-type=zst', '--process-max=2', 'backup'], env);

  // The load: pgbench's TPC-B until the WAL has moved `segments` segments past the backups.
  const from = lsnBytes(await walOf(c));
  // Commits not waiting for their WAL flush: the load writes WAL as fast as this machine lets it.
  const loadEnv = { ...process.env, ...env, PGOPTIONS: '-c synchronous_commit=off' };
  await c.sql('checkpoint');
  const load = spawn(join(PGBIN, 'pgbench'), ['-n', '-c', '4', '-j', '2', '-T', '3600'], { env: loadEnv, stdio: 'ignore' });
  const loadDone = new Promise((res) => load.on('exit', res));
  while (lsnBytes(await walOf(c)) < from + opt.segments * 16 * 2 ** 20) {
    if (load.exitCode !== null) throw new Error(`pgbench exited (${load.exitCode}) before the WAL moved ${opt.segments} segments`);
    await sleep(500);
  }
  load.kill('SIGINT');
  await loadDone;
  await c.sql(`select pg_create_restore_point('ttr_target')`);
  const targetLsn = await walOf(c);
  const [{ n: tx }] = await c.sql(`select count(*)::bigint as n from pgbench_history`);
  await c.sql('create table after_target (x int)'); // must not be there after recovery
  await switchAndWaitArchived();
  replayInfo = `${((lsnBytes(targetLsn) - from) / 2 ** 24).toFixed(0)} segments of pgbench TPC-B WAL (${tx} transactions) between the backups and the target`;
  log(replayInfo);
  await c.stop();

  const dest = join(work, 'restore');
  const run = async (tool, sb, counted = true) => {
    rmSync(dest, { recursive: true, force: true });
    rmSync(join(pSpool, 'bench'), { recursive: true, force: true });
    for (const n of ['archive', 'bench-archive']) rmSync(join(bMisc, n), { recursive: true, force: true });
    mkdirPg(dest);
    if (tool === 'floor') {
      // Untimed: the restore, then every archived segment of the stanza put in pg_wal.
      measured(process.execPath, [PGPITR, 'restore', ...pArgs, '--set', pgpitrSet, '-D', dest, '--process-max', '2', '--no-archive-async', '--recovery-option', 'restore_command=false', '--target-name', 'ttr_target', '--target-action', 'promote'], env);
      for (const name of archivedSegments(join(pRepo, 'bench', 'archive'))) measured(process.execPath, [PGPITR, 'archive-get', ...pArgs, name, join(dest, 'pg_wal', name)], env);
    }
    spawnSync('sync');
    const t0 = performance.now();
    const r = tool === 'floor'
      ? { rssMb: 0 }
      : tool === 'pgpitr'
      ? measured(process.execPath, [PGPITR, 'restore', ...pArgs, '--set', pgpitrSet, '-D', dest, '--process-max', '2', '--spool-path', pSpool, '--target-name', 'ttr_target', '--target-action', 'promote'], env)
      : measured('pgbackrest', [...bArgs, `--pg1-path=${dest}`, '--type=name', '--target=ttr_target', '--target-action=promote', 'restore'], env);
    const restored = tool === 'floor' ? 0 : (performance.now() - t0) / 1000;
    const copy = await TestCluster.startExisting(dest, 15, { name: `ttr-${tool}`, wait: false, conf: { archive_mode: 'off', shared_buffers: sb } });
    try {
      for (;;) {
        try {
          const [{ r: inRecovery }] = await copy.sql('select pg_is_in_recovery() as r');
          if (!inRecovery) break;
        } catch {
          // not accepting connections yet
        }
        if (performance.now() - t0 > 1800_000) throw new Error(`${tool}: no promotion after 30 minutes:\n${copy.logTail()}`);
        await sleep(50);
      }
      const total = (performance.now() - t0) / 1000;
      const [{ n }] = await copy.sql(`select count(*)::bigint as n from pgbench_history`);
      const [{ t }] = await copy.sql(`select count(*)::int as t from pg_class where relname = 'after_target'`);
      if (n !== tx || t !== 0) throw new Error(`${tool}: recovered ${n} transactions (expected ${tx}), after_target ${t ? 'present' : 'absent'}`);
      log(`${counted ? '' : 'warm-up, not counted: '}${tool} (shared_buffers ${sb}): restore ${restored.toFixed(2)} s, promoted at ${total.toFixed(2)} s, restore RSS ${r.rssMb.toFixed(0)} MB`);
      if (counted) results[sb][tool].push({ restore: restored, total, rss: r.rssMb });
    } finally {
      await copy.destroy();
    }
  };
  const tools = (i) => [...(i % 2 ? ['pgbackrest', 'pgpitr'] : ['pgpitr', 'pgbackrest']), ...(opt.floor ? ['floor'] : [])];
  for (let i = 0; i < opt.warmup; i++) for (const sb of opt.sharedBuffers) for (const tool of tools(i)) await run(tool, sb, false);
  for (let i = 0; i < opt.runs; i++) for (const sb of opt.sharedBuffers) for (const tool of tools(i)) await run(tool, sb);
} finally {
  await destroyAll();
}

const med = (sb, tool, k) => median(results[sb][tool].map((x) => x[k]));
const lines = [
  '## Time to recover (bench/time-to-recover.mjs)',
  '',
  `Run ${started.toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, pgbench scale ${opt.scale}, zstd; ` +
    `${spawnSync('pgbackrest', ['version'], { encoding: 'utf8' }).stdout.trim()}; ${replayInfo}; ${opt.runs} runs per tool and setting, alternating, after ${opt.warmup} round(s) not counted, median wall seconds.`,
  'From the start of the restore command to `pg_is_in_recovery()` false: restore (2 processes each), start, WAL fetched by restore_command and replayed up to a named restore point, promotion. ' +
    'pgpitr: its default restore_command (`mv` of a prefetched segment, else the running fetcher\'s answer through `pgpitr-spool-get`, else `archive-get --archive-async`); pgBackRest: `archive-async=y`, `process-max=2`. Both restored clusters hold exactly the transactions committed before the target (checked). Target ratio 0.8. ' +
    'The restored server runs with the shared_buffers in the first column (the rest of its settings are the source\'s: fsync off, max_wal_size 4GB): 32MB is the test harness\'s setting, 4GB the usual order of size for a dedicated server (PostgreSQL\'s documentation suggests 25% of memory).',
  '',
  '| shared_buffers | tool | restore s | time to promoted s | of which after the restore s | restore peak RSS |',
  '|---|---|---:|---:|---:|---:|',
  ...opt.sharedBuffers.flatMap((sb) => [
    `| ${sb} | pgpitr | ${med(sb, 'pgpitr', 'restore').toFixed(2)} | ${med(sb, 'pgpitr', 'total').toFixed(2)} | ${(med(sb, 'pgpitr', 'total') - med(sb, 'pgpitr', 'restore')).toFixed(2)} | ${Math.max(...results[sb].pgpitr.map((x) => x.rss)).toFixed(0)} MB |`,
    `| ${sb} | pgBackRest | ${med(sb, 'pgbackrest', 'restore').toFixed(2)} | ${med(sb, 'pgbackrest', 'total').toFixed(2)} | ${(med(sb, 'pgbackrest', 'total') - med(sb, 'pgbackrest', 'restore')).toFixed(2)} | ${Math.max(...results[sb].pgbackrest.map((x) => x.rss)).toFixed(0)} MB |`,
    `| ${sb} | **ratio** | **${(med(sb, 'pgpitr', 'restore') / med(sb, 'pgbackrest', 'restore')).toFixed(2)}** | **${(med(sb, 'pgpitr', 'total') / med(sb, 'pgbackrest', 'total')).toFixed(2)}** | | |`,
    ...(opt.floor
      ? [`| ${sb} | floor: WAL already in pg_wal, restore not counted | – | ${med(sb, 'floor', 'total').toFixed(2)} (${(med(sb, 'floor', 'total') / med(sb, 'pgbackrest', 'total')).toFixed(2)} of pgBackRest's) | ${med(sb, 'floor', 'total').toFixed(2)} | – |`]
      : []),
  ]),
  '',
  'All runs (restore / promoted, seconds):',
  '',
  ...opt.sharedBuffers.flatMap((sb) => Object.entries(results[sb]).filter(([, xs]) => xs.length > 0).map(([t, xs]) => `- ${sb}, ${t}: ${xs.map((x) => `${x.restore.toFixed(2)} / ${x.total.toFixed(2)}`).join(', ')}`)),
];
replaceSection(opt.out, lines[0], lines.join('\n'));
log(`results in ${opt.out}`);
