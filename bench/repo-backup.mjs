#!/usr/bin/env node
// Benchmark: `pgpitr backup` and `pgpitr restore` against pgBackRest's full
// backup (--process-max 1 and 2) and restore, on the same pgbench cluster, in
// one run, with no compression, lz4 and zstd. Reports median wall times, the
// ratios and peak RSS (GNU time) into bench/RESULTS.md.
//
//   node bench/repo-backup.mjs [--scale N] [--runs N] [--compress none,lz4,zstd] [--out FILE]
//
// Needs a built tree, PostgreSQL 15 from Debian, pgbackrest (apt-get install pgbackrest),
// /usr/bin/time, root (tools run as `postgres`, as they would on a server).

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
const PGBR_COMPRESS = { none: 'none', lz4: 'lz4', zstd: 'zst', gzip: 'gz' };

const opt = { scale: 100, runs: 3, compress: ['none', 'lz4', 'zstd'], out: join(HERE, 'RESULTS.md') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--scale') opt.scale = Number(argv[++i]);
  else if (a === '--runs') opt.runs = Number(argv[++i]);
  else if (a === '--compress') opt.compress = argv[++i].split(',');
  else if (a === '--out') opt.out = resolve(argv[++i]);
  else {
    process.stderr.write('usage: node bench/repo-backup.mjs [--scale N] [--runs N] [--compress none,lz4,zstd] [--out FILE]\n');
    process.exit(2);
  }
}

const results = [];
const started = new Date();
try {
  log(`PostgreSQL 15, pgbench scale ${opt.scale}`);
  const { c, env, work, pRepo, bRepo, bMisc, pArgs, bArgs, archiveFirst } = await twoToolCluster({ name: 'benchrepo', scale: opt.scale, pgbackrest: ['archive-async=n', 'start-fast=y'] });
  const dbBytes = Number((await c.sql(`select sum(pg_database_size(oid))::bigint as b from pg_database`))[0].b);
  log(`cluster: ${(dbBytes / 2 ** 30).toFixed(2)} GiB of databases`);

  for (const comp of opt.compress) {
    const tools = {
      pgpitr: () => measured(process.execPath, [PGPITR, 'backup', ...pArgs, '--start-fast', '--compress-type', comp, '--output', 'json'], env),
      // Parallel (pgpitr's own readers), as pgBackRest's --process-max=2 is.
      'pgpitr -j 2': () => measured(process.execPath, [PGPITR, 'backup', ...pArgs, '--start-fast', '-j', '2', '--compress-type', comp, '--output', 'json'], env),
      'pgbackrest pm1': () => measured('pgbackrest', [...bArgs, '--type=full', `--compress-type=${PGBR_COMPRESS[comp]}`, '--process-max=1', 'backup'], env),
      'pgbackrest pm2': () => measured('pgbackrest', [...bArgs, '--type=full', `--compress-type=${PGBR_COMPRESS[comp]}`, '--process-max=2', 'backup'], env),
    };
    const samples = Object.fromEntries(Object.keys(tools).map((t) => [t, []]));
    let lastPgpitrId = '';
    for (let run = 0; run < opt.runs; run++) {
      const names = Object.keys(tools);
      const order = names.slice(run % names.length).concat(names.slice(0, run % names.length));
      for (const t of order) {
        await archiveFirst(t.startsWith('pgpitr') ? 'pgpitr' : 'pgbackrest');
        warm(c.dataDir);
        const r = tools[t]();
        samples[t].push(r);
        if (t === 'pgpitr -j 2') lastPgpitrId = JSON.parse(r.out).id;
        log(`${comp} backup ${t}: ${r.s.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
      }
    }
    const stored = { pgpitr: treeBytes(join(pRepo, 'bench', 'backup', lastPgpitrId)) };
    const bBackups = readdirSync(join(bRepo, 'backup', 'bench')).filter((n) => /F$/.test(n)).sort();
    stored.pgbackrest = treeBytes(join(bRepo, 'backup', 'bench', bBackups.at(-1)));
    for (const t of Object.keys(tools)) results.push({ op: 'backup', comp, tool: t, s: median(samples[t].map((x) => x.s)), rss: Math.max(...samples[t].map((x) => x.rssMb)), runs: samples[t].map((x) => x.s) });

    // Restore of the newest backup of each, 2 processes each, into an empty directory.
    const rs = { pgpitr: [], 'pgbackrest pm2': [] };
    for (let run = 0; run < opt.runs; run++) {
      for (const t of run % 2 ? ['pgbackrest pm2', 'pgpitr'] : ['pgpitr', 'pgbackrest pm2']) {
        const dest = join(work, 'restore');
        rmSync(dest, { recursive: true, force: true });
        mkdirPg(dest);
        const r = t === 'pgpitr'
          ? measured(process.execPath, [PGPITR, 'restore', ...pArgs, '--set', lastPgpitrId, '-D', dest, '--process-max', '2', '--spool-path', bMisc, '--target-immediate'], env)
          : measured('pgbackrest', [...bArgs, `--pg1-path=${dest}`, '--process-max=2', '--type=immediate', 'restore'], env);
        rs[t].push(r);
        log(`${comp} restore ${t}: ${r.s.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
      }
    }
    for (const t of Object.keys(rs)) results.push({ op: 'restore', comp, tool: t, s: median(rs[t].map((x) => x.s)), rss: Math.max(...rs[t].map((x) => x.rssMb)), runs: rs[t].map((x) => x.s) });
    results.push({ op: 'stored', comp, pgpitr: stored.pgpitr, pgbackrest: stored.pgbackrest });
    // Keep the repositories small between cases.
    measured(process.execPath, [PGPITR, 'expire', ...pArgs, '--retention-full', '1'], env);
    measured('pgbackrest', [...bArgs, '--repo1-retention-full=1', 'expire'], env);
  }
} finally {
  await destroyAll();
}

const row = (op, comp, tool) => results.find((r) => r.op === op && r.comp === comp && r.tool === tool);
const lines = [
  '## Repository backup and restore (bench/repo-backup.mjs)',
  '',
  `Run ${started.toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, pgbench scale ${opt.scale}; ` +
    `${spawnSync('pgbackrest', ['version'], { encoding: 'utf8' }).stdout.trim()}; ${opt.runs} runs per tool and case, median wall seconds; data in the page cache before each run; both tools write a local repository and sync it; archive_command runs the measured tool\'s archive-push first.`,
  'pgpitr backup: one BASE_BACKUP stream (the default), and `-j 2` (its own two readers). Backup ratio: pgpitr `-j 2` / pgBackRest `--process-max=2` (target 0.5), and the single stream\'s in parentheses. ' +
    'Restore (of the newest `-j 2` backup): both with 2 processes into an empty directory, `--target-immediate` (target 0.8). RSS: the largest of the runs.',
  '',
  '| compression | pgpitr backup | pgpitr backup -j 2 | pgBackRest pm1 | pgBackRest pm2 | backup ratio | pgpitr restore | pgBackRest restore | restore ratio | pgpitr RSS backup / -j 2 / restore | pgBackRest RSS backup / restore | stored pgpitr / pgBackRest |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
for (const comp of opt.compress) {
  const b = row('backup', comp, 'pgpitr');
  const bj = row('backup', comp, 'pgpitr -j 2');
  const b1 = row('backup', comp, 'pgbackrest pm1');
  const b2 = row('backup', comp, 'pgbackrest pm2');
  const r = row('restore', comp, 'pgpitr');
  const r2 = row('restore', comp, 'pgbackrest pm2');
  const st = results.find((x) => x.op === 'stored' && x.comp === comp);
  lines.push(
    `| ${comp} | ${b.s.toFixed(2)} | ${bj.s.toFixed(2)} | ${b1.s.toFixed(2)} | ${b2.s.toFixed(2)} | **${(bj.s / b2.s).toFixed(2)}** (${(b.s / b2.s).toFixed(2)}) | ${r.s.toFixed(2)} | ${r2.s.toFixed(2)} | **${(r.s / r2.s).toFixed(2)}** | ` +
      `${b.rss.toFixed(0)} / ${bj.rss.toFixed(0)} / ${r.rss.toFixed(0)} MB | ${Math.max(b1.rss, b2.rss).toFixed(0)} / ${r2.rss.toFixed(0)} MB | ${(st.pgpitr / 2 ** 20).toFixed(0)} / ${(st.pgbackrest / 2 ** 20).toFixed(0)} MiB |`,
  );
}
lines.push('', 'All runs (seconds):', '');
for (const x of results.filter((r) => r.runs)) lines.push(`- ${x.op} ${x.comp} ${x.tool}: ${x.runs.map((s) => s.toFixed(2)).join(', ')}`);
replaceSection(opt.out, lines[0], lines.join('\n'));
log(`results in ${opt.out}`);
