#!/usr/bin/env node
// Benchmark: incremental repository backups, pgpitr against pgBackRest, on the
// same pgbench cluster in one run. Each tool takes a full backup; then, per run,
// the same change (rows appended to pgbench_history and a few branch and teller
// rows updated: a small part of the cluster, as between two nightly backups of
// a mostly-read database) and an incremental backup by each tool, in
// alternating order; then a restore of each tool's newest incremental backup
// (which reads the unchanged files from the full backup's set). Reports median
// wall times, ratios, stored bytes and peak RSS into bench/RESULTS.md.
//
//   node bench/incremental.mjs [--scale N] [--runs N] [--out FILE]
//
// Needs a built tree, PostgreSQL 15 from Debian, pgbackrest, /usr/bin/time, root.

import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection } from './results-file.mjs';
import { log, measured, median, mkdirPg, treeBytes, warm } from './as-postgres.mjs';
import { PGPITR, twoToolCluster } from './two-tools.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { destroyAll } = await import(join(resolve(HERE, '..'), 'dist/test/harness/cluster.js'));

const opt = { scale: 100, runs: 3, out: join(HERE, 'RESULTS.md') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--scale') opt.scale = Number(argv[++i]);
  else if (a === '--runs') opt.runs = Number(argv[++i]);
  else if (a === '--out') opt.out = resolve(argv[++i]);
  else {
    process.stderr.write('usage: node bench/incremental.mjs [--scale N] [--runs N] [--out FILE]\n');
    process.exit(2);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const samples = {};
const add = (key, r) => (samples[key] ??= []).push(r);
const stored = { pgpitr: [], pgbackrest: [] };
let changedBytes = 0;
const started = new Date();
try {
  log(`PostgreSQL 15, pgbench scale ${opt.scale}`);
  const { c, env, work, pRepo, bRepo, bMisc, pArgs, bArgs, archiveFirst } = await twoToolCluster({ name: 'benchincr', scale: opt.scale, pgbackrest: ['archive-async=n', 'start-fast=y', 'process-max=2'] });
  const dbBytes = Number((await c.sql(`select sum(pg_database_size(oid))::bigint as b from pg_database`))[0].b);
  log(`cluster: ${(dbBytes / 2 ** 30).toFixed(2)} GiB of databases`);
  // Both tools compare modification times with their previous backup's start: the load's files settle first.
  await sleep(3000);

  const tools = {
    'pgpitr -j 2': (type) => measured(process.execPath, [PGPITR, 'backup', ...pArgs, '--start-fast', '-j', '2', '--type', type, '--output', 'json'], env),
    'pgbackrest pm2': (type) => measured('pgbackrest', [...bArgs, `--type=${type}`, 'backup'], env),
  };
  for (const t of Object.keys(tools)) {
    await archiveFirst(t.startsWith('pgpitr') ? 'pgpitr' : 'pgbackrest');
    warm(c.dataDir);
    const r = tools[t]('full');
    add(`full ${t}`, r);
    log(`full backup ${t}: ${r.s.toFixed(2)} s`);
  }
  let lastPgpitr = '';
  for (let run = 0; run < opt.runs; run++) {
    const before = Number((await c.sql(`select pg_relation_size('pgbench_history')::bigint as b`))[0].b);
    await c.sql(`insert into pgbench_history select 1 + g % ${10 * opt.scale}, 1 + g % ${opt.scale}, 1 + g % ${100000 * opt.scale}, g % 5000, now(), null from generate_series(1, 200000) g`);
    await c.sql(`update pgbench_branches set bbalance = bbalance + 1 where bid % 10 = ${run % 10}`);
    await c.sql(`update pgbench_tellers set tbalance = tbalance + 1 where tid % 10 = ${run % 10}`);
    await c.sql('checkpoint');
    changedBytes = Number((await c.sql(`select pg_relation_size('pgbench_history')::bigint as b`))[0].b) - before;
    await sleep(3000);
    const order = run % 2 ? ['pgbackrest pm2', 'pgpitr -j 2'] : ['pgpitr -j 2', 'pgbackrest pm2'];
    for (const t of order) {
      await archiveFirst(t.startsWith('pgpitr') ? 'pgpitr' : 'pgbackrest');
      warm(c.dataDir);
      const r = tools[t]('incr');
      add(`incr ${t}`, r);
      if (t === 'pgpitr -j 2') {
        const rec = JSON.parse(r.out);
        if (rec.type !== 'incr') throw new Error(`pgpitr took a ${rec.type} backup`);
        lastPgpitr = rec.id;
        stored.pgpitr.push(rec.stored_size);
      } else {
        const last = readdirSync(join(bRepo, 'backup', 'bench')).filter((n) => /I$/.test(n)).sort().at(-1);
        stored.pgbackrest.push(treeBytes(join(bRepo, 'backup', 'bench', last)));
      }
      log(`incr backup ${t}: ${r.s.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
    }
  }
  for (let run = 0; run < opt.runs; run++) {
    for (const t of run % 2 ? ['pgbackrest pm2', 'pgpitr'] : ['pgpitr', 'pgbackrest pm2']) {
      const dest = join(work, 'restore');
      rmSync(dest, { recursive: true, force: true });
      mkdirPg(dest);
      const r = t === 'pgpitr'
        ? measured(process.execPath, [PGPITR, 'restore', ...pArgs, '--set', lastPgpitr, '-D', dest, '--process-max', '2', '--spool-path', bMisc, '--target-immediate'], env)
        : measured('pgbackrest', [...bArgs, `--pg1-path=${dest}`, '--type=immediate', 'restore'], env);
      add(`restore ${t}`, r);
      log(`restore of the newest incr ${t}: ${r.s.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
    }
  }
} finally {
  await destroyAll();
}

const m = (k) => median(samples[k].map((x) => x.s));
const rss = (k) => Math.max(...samples[k].map((x) => x.rssMb)).toFixed(0);
const mib = (b) => (b / 2 ** 20).toFixed(1);
const lines = [
  '## Incremental backup (bench/incremental.mjs)',
  '',
  `Run ${started.toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, pgbench scale ${opt.scale}; ` +
    `${spawnSync('pgbackrest', ['version'], { encoding: 'utf8' }).stdout.trim()}; zstd, local repositories, both tools with 2 processes (\`-j 2\`, \`--process-max=2\`), \`--start-fast\`.`,
  `Each tool takes a full backup; then ${opt.runs} times: 200,000 rows appended to pgbench_history (${mib(changedBytes)} MiB), a tenth of the branches and tellers updated, a checkpoint, and an incremental backup by each tool (alternating which goes first). ` +
    'Then the newest incremental backup of each is restored (`--target-immediate`, 2 processes), reading the unchanged files from the full backup. Median wall seconds; RSS the largest.',
  '',
  '| operation | pgpitr | pgBackRest | ratio | pgpitr RSS | pgBackRest RSS |',
  '|---|---:|---:|---:|---:|---:|',
  `| full backup (one each; bench/repo-backup.mjs measures full backups) | ${m('full pgpitr -j 2').toFixed(2)} | ${m('full pgbackrest pm2').toFixed(2)} | **${(m('full pgpitr -j 2') / m('full pgbackrest pm2')).toFixed(2)}** | ${rss('full pgpitr -j 2')} MB | ${rss('full pgbackrest pm2')} MB |`,
  `| incremental backup | ${m('incr pgpitr -j 2').toFixed(2)} | ${m('incr pgbackrest pm2').toFixed(2)} | **${(m('incr pgpitr -j 2') / m('incr pgbackrest pm2')).toFixed(2)}** | ${rss('incr pgpitr -j 2')} MB | ${rss('incr pgbackrest pm2')} MB |`,
  `| restore of the newest incremental | ${m('restore pgpitr').toFixed(2)} | ${m('restore pgbackrest pm2').toFixed(2)} | **${(m('restore pgpitr') / m('restore pgbackrest pm2')).toFixed(2)}** | ${rss('restore pgpitr')} MB | ${rss('restore pgbackrest pm2')} MB |`,
  '',
  `Stored per incremental backup (median): pgpitr ${mib(median(stored.pgpitr))} MiB, pgBackRest ${mib(median(stored.pgbackrest))} MiB (pgBackRest's directory, manifest included).`,
  '',
  'All runs (seconds):',
  '',
  ...Object.entries(samples).map(([k, v]) => `- ${k}: ${v.map((x) => x.s.toFixed(2)).join(', ')}`),
];
replaceSection(opt.out, lines[0], lines.join('\n'));
log(`results in ${opt.out}`);
