#!/usr/bin/env node
// Benchmark: peak memory (and wall time) with many files. A PostgreSQL 15 cluster
// of many small relations (--tables N tables, each with its TOAST table and index:
// about 3.3 files per table with the catalogs), backed up into a repository by
// pgpitr (one stream, and -j 2) and pgBackRest (--process-max 2), restored by both
// with 2 processes, and the pgpitr set verified. The issues' target: peak RSS under
// 250 MB whatever the size of the cluster, which here means its number of files.
//
//   node bench/many-files.mjs [--tables N] [--compress none,zstd] [--out FILE]
//
// Needs what bench/repo-backup.mjs needs. One run per case: memory is the point.

import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection } from './results-file.mjs';
import { log, measured, mkdirPg, warm } from './as-postgres.mjs';
import { PGPITR, twoToolCluster } from './two-tools.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const { destroyAll } = await import(join(resolve(HERE, '..'), 'dist/test/harness/cluster.js'));
const PGBR_COMPRESS = { none: 'none', lz4: 'lz4', zstd: 'zst', gzip: 'gz' };

const opt = { tables: 30000, compress: ['none', 'zstd'], out: join(HERE, 'RESULTS.md') };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--tables') opt.tables = Number(argv[++i]);
  else if (a === '--compress') opt.compress = argv[++i].split(',');
  else if (a === '--out') opt.out = resolve(argv[++i]);
  else {
    process.stderr.write('usage: node bench/many-files.mjs [--tables N] [--compress none,zstd] [--out FILE]\n');
    process.exit(2);
  }
}

const results = [];
const started = new Date();
let files = 0;
let dbBytes = 0;
try {
  const { c, env, work, pArgs, bArgs, bMisc, archiveFirst, switchAndWaitArchived } = await twoToolCluster({ name: 'benchmany', scale: 1, pgbackrest: ['archive-async=n', 'start-fast=y'] });
  log(`creating ${opt.tables} tables`);
  for (let from = 0; from < opt.tables; from += 1000) {
    const to = Math.min(opt.tables, from + 1000);
    await c.sql(`do $$ begin for i in ${from}..${to - 1} loop execute format('create table many_%s (id int, v text); insert into many_%s values (%s, repeat(''x'', 100))', i, i, i); end loop; end $$`);
  }
  await c.sql('checkpoint');
  await switchAndWaitArchived();
  files = Number(spawnSync('find', [c.dataDir, '-type', 'f'], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout.split('\n').filter(Boolean).length);
  dbBytes = Number((await c.sql(`select sum(pg_database_size(oid))::bigint as b from pg_database`))[0].b);
  log(`cluster: ${files} files, ${(dbBytes / 2 ** 30).toFixed(2)} GiB of databases`);

  const run = (op, comp, tool, f) => {
    const r = f();
    results.push({ op, comp, tool, s: r.s, rss: r.rssMb });
    log(`${comp} ${op} ${tool}: ${r.s.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
    return r;
  };
  for (const comp of opt.compress) {
    let id = '';
    for (const [tool, args] of [['pgpitr', []], ['pgpitr -j 2', ['-j', '2']]]) {
      await archiveFirst('pgpitr');
      warm(c.dataDir);
      const r = run('backup', comp, tool, () => measured(process.execPath, [PGPITR, 'backup', ...pArgs, '--start-fast', ...args, '--compress-type', comp, '--output', 'json'], env));
      id = JSON.parse(r.out).id;
    }
    await archiveFirst('pgbackrest');
    warm(c.dataDir);
    run('backup', comp, 'pgbackrest pm2', () => measured('pgbackrest', [...bArgs, '--type=full', `--compress-type=${PGBR_COMPRESS[comp]}`, '--process-max=2', 'backup'], env));
    run('verify', comp, 'pgpitr', () => measured(process.execPath, [PGPITR, 'verify', ...pArgs, '--set', id, '--process-max', '2'], env));
    const dest = join(work, 'restore');
    for (const tool of ['pgpitr', 'pgbackrest pm2']) {
      rmSync(dest, { recursive: true, force: true });
      mkdirPg(dest);
      run('restore', comp, tool, () => tool === 'pgpitr'
        ? measured(process.execPath, [PGPITR, 'restore', ...pArgs, '--set', id, '-D', dest, '--process-max', '2', '--spool-path', bMisc, '--target-immediate'], env)
        : measured('pgbackrest', [...bArgs, `--pg1-path=${dest}`, '--process-max=2', '--type=immediate', 'restore'], env));
    }
    rmSync(dest, { recursive: true, force: true });
    measured(process.execPath, [PGPITR, 'expire', ...pArgs, '--retention-full', '1'], env);
    measured('pgbackrest', [...bArgs, '--repo1-retention-full=1', 'expire'], env);
  }
} finally {
  await destroyAll();
}

const row = (op, comp, tool) => results.find((r) => r.op === op && r.comp === comp && r.tool === tool);
const cell = (x) => (x ? `${x.s.toFixed(1)} s, **${x.rss.toFixed(0)} MB**` : '-');
const lines = [
  '## Many files: peak memory (bench/many-files.mjs)',
  '',
  `Run ${started.toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, ${opt.tables} tables of one row (and their TOAST tables): ` +
    `${files} files, ${(dbBytes / 2 ** 30).toFixed(2)} GiB of databases; ${spawnSync('pgbackrest', ['version'], { encoding: 'utf8' }).stdout.trim()}; one run each; wall time and peak RSS (GNU time); local repositories, synced. ` +
    'Restore and verify are of the `-j 2` backup, with 2 processes. Target: peak RSS under 250 MB. GNU time gives the peak of the process it started: ' +
    "pgpitr's threads are in that process; pgBackRest's --process-max 2 works in two more processes, each about the size shown.",
  '',
  '| compression | pgpitr backup | pgpitr backup -j 2 | pgBackRest backup pm2 | pgpitr verify | pgpitr restore | pgBackRest restore pm2 |',
  '|---|---:|---:|---:|---:|---:|---:|',
];
for (const comp of opt.compress) {
  lines.push(`| ${comp} | ${cell(row('backup', comp, 'pgpitr'))} | ${cell(row('backup', comp, 'pgpitr -j 2'))} | ${cell(row('backup', comp, 'pgbackrest pm2'))} | ${cell(row('verify', comp, 'pgpitr'))} | ${cell(row('restore', comp, 'pgpitr'))} | ${cell(row('restore', comp, 'pgbackrest pm2'))} |`);
}
replaceSection(opt.out, lines[0], lines.join('\n'));
log(`results in ${opt.out}`);
