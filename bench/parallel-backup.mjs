#!/usr/bin/env node
// Benchmark for issue 10 ("Speed and memory"): pgpitr's parallel backup (-j 1, -j 2, per read
// method) and its single stream against pg_basebackup and pgBackRest full backups, on ONE pgbench
// cluster in one run: plain (synced and -N), then tar / repository backups uncompressed, lz4 and
// zstd. Median wall, user and system CPU, peak RSS (GNU time); the issue's ratios; a section of
// bench/RESULTS.md. See bench/README.md.
//
//   node bench/parallel-backup.mjs [--scale N] [--runs N] [--methods direct,sql] [--compress none,lz4,zstd]
//        [--repo-jobs auto|on|off] [--only plain|compressed] [--root DIR] [--out FILE] [--no-snapshot]
//
// Needs root (tools run as `postgres`), a built tree, PostgreSQL 15 from Debian, pgbackrest, /usr/bin/time.

import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, copyFileSync, cpSync, existsSync, lstatSync, mkdtempSync, openSync, readSync, readdirSync, rmSync,
  statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection } from './results-file.mjs';
import { log, measured, median, mkdirPg, pgGid, pgUid, warm } from './as-postgres.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PGBIN = '/usr/lib/postgresql/15/bin';
const PGBR_COMPRESS = { none: 'none', lz4: 'lz4', zstd: 'zst' };
const HEADING = '## Parallel backup (bench/parallel-backup.mjs)';
const TARGET = { parallelVsPgbb: 0.77, parallelVsPgbr: 1.0, single: 1.10, rssMb: 250 };

const USAGE = `usage: node bench/parallel-backup.mjs [options]
  --scale N            pgbench scale (default 100)
  --runs N             repetitions per tool and case (default 3)
  --methods LIST       pgpitr -j read methods, comma-separated (default direct,sql)
  --compress LIST      compressions of the tar / repository cases (default none,lz4,zstd)
  --repo-jobs MODE     pgpitr backup -j rows: auto (when "pgpitr backup --help" lists -j), on, off (default auto)
  --only PART          plain or compressed (default both)
  --root DIR           project tree whose dist/ is measured (default: this script's tree; or PGPITR_BENCH_ROOT)
  --out FILE           results file (default bench/RESULTS.md of this script's tree)
  --no-snapshot        run pgpitr straight from DIR/dist instead of a private copy taken at start
`;
const opt = {
  scale: 100, runs: 3, methods: ['direct', 'sql'], compress: ['none', 'lz4', 'zstd'], repoJobs: 'auto', only: undefined,
  root: process.env.PGPITR_BENCH_ROOT, out: join(HERE, 'RESULTS.md'), snapshot: true,
};
const argv = process.argv.slice(2);
const bad = (m) => { process.stderr.write(`${m}\n${USAGE}`); process.exit(2); };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => (i + 1 < argv.length ? argv[++i] : bad(`${a} needs a value`));
  const posInt = (v) => (/^[1-9]\d*$/.test(v) ? Number(v) : bad(`${a} needs a positive integer`));
  if (a === '--scale') opt.scale = posInt(val());
  else if (a === '--runs') opt.runs = posInt(val());
  else if (a === '--methods') opt.methods = val().split(',').filter(Boolean);
  else if (a === '--compress') opt.compress = val().split(',').filter(Boolean);
  else if (a === '--repo-jobs') opt.repoJobs = val();
  else if (a === '--only') opt.only = val();
  else if (a === '--root') opt.root = val();
  else if (a === '--out') opt.out = resolve(val());
  else if (a === '--no-snapshot') opt.snapshot = false;
  else if (a === '-h' || a === '--help') { process.stdout.write(USAGE); process.exit(0); }
  else bad(`unknown argument ${a}`);
}
if (!['auto', 'on', 'off'].includes(opt.repoJobs)) bad('--repo-jobs takes auto, on or off');
if (opt.only && !['plain', 'compressed'].includes(opt.only)) bad('--only takes plain or compressed');
for (const c of opt.compress) if (!(c in PGBR_COMPRESS)) bad(`unknown compression ${c}`);
for (const m of opt.methods) if (!['direct', 'sql', 'auto'].includes(m)) bad(`unknown read method ${m}`);

const ROOT = resolve(opt.root ?? join(HERE, '..'));
const builtCli = join(ROOT, 'dist/src/cli/main.js');
for (const [p, what] of [[builtCli, 'a build (npx tsc -p tsconfig.json)'], [join(PGBIN, 'pg_basebackup'), 'PostgreSQL 15'], ['/usr/bin/time', 'GNU time'], ['/usr/bin/pgbackrest', 'pgbackrest']]) {
  if (!existsSync(p)) bad(`missing ${what}: ${p}`);
}
const { TestCluster, destroyAll } = await import(join(ROOT, 'dist/test/harness/cluster.js'));
const { runPgbenchInit } = await import(join(ROOT, 'dist/test/harness/data.js'));

/** A private copy of dist/src readable by postgres: a rebuild of dist/ mid-run must not change the code measured. */
function snapshotDist() {
  const dir = mkdtempSync(join(os.tmpdir(), 'parbench-dist-'));
  chmodSync(dir, 0o755);
  cpSync(join(ROOT, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}


function treeBytes(d) {
  if (!existsSync(d)) return undefined;
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) n += treeBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

/** Waits until the archiver has nothing ready, so that one run's WAL archiving does not steal CPU from the next. */
async function archiveIdle(dataDir) {
  const st = join(dataDir, 'pg_wal', 'archive_status');
  for (let i = 0; i < 600; i++) {
    if (!readdirSync(st).some((n) => n.endsWith('.ready'))) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

const sh = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
};

const started = new Date();
const snapshot = opt.snapshot ? snapshotDist() : undefined;
const PGPITR = snapshot ? join(snapshot, 'dist/src/cli/main.js') : builtCli;
const info = {
  commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) || '?',
  dirty: sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length,
  builtAt: lstatSync(builtCli).mtime.toISOString(),
  pgbackrest: sh('pgbackrest', ['version']),
};
// `pgpitr backup -j` exists only once the engine's CLI says so; --repo-jobs on runs the rows regardless.
const backupHelp = spawnSync(process.execPath, [PGPITR, 'backup', '--help'], { encoding: 'utf8' }).stdout ?? '';
const backupHasJobs = /(^|\s)-j, --jobs/m.test(backupHelp);
const repoJobs = opt.repoJobs === 'on' || (opt.repoJobs === 'auto' && backupHasJobs);
const notes = [];
if (!repoJobs) notes.push(`pgpitr backup -j rows not run (${opt.repoJobs === 'off' ? '--repo-jobs off' : '"pgpitr backup --help" lists no -j'}; --repo-jobs on forces them).`);
if (snapshot) log(`running pgpitr from a copy of ${ROOT}/dist in ${snapshot}`);

/** cases[i] = { key, title, variants: [{ id, label, kind, argv(dir), repo? }] }; samples[case][variant] = [...] */
const cases = [];
const samples = {};
const failures = {}; // `${case}/${variant}` -> first error (the variant is skipped for the remaining runs)

let cluster;
try {
  log(`PostgreSQL 15, pgbench scale ${opt.scale}`);
  cluster = await TestCluster.create({
    version: 15, name: 'parbench', conf: { autovacuum: 'off', max_wal_size: '4GB', checkpoint_timeout: '30min' },
  });
  const c = cluster;
  const env = c.connectionEnv();
  const conn = ['-h', c.host, '-p', String(c.port), '-U', 'postgres'];
  const work = mkdirPg(c.tempDir('bench'));
  const pRepo = mkdirPg(join(work, 'pgpitr-repo'));
  const bRepo = mkdirPg(join(work, 'pgbr-repo'));
  const bMisc = mkdirPg(join(work, 'pgbr-misc'));
  const outDir = mkdirPg(join(work, 'out'));
  const conf = join(work, 'pgbackrest.conf');
  writeFileSync(conf, [
    '[global]', `repo1-path=${bRepo}`, 'log-level-console=warn', 'log-level-stderr=warn', 'log-level-file=off',
    `log-path=${bMisc}`, `lock-path=${bMisc}`, `spool-path=${bMisc}`, 'archive-async=n', 'start-fast=y', '',
    '[bench]', `pg1-path=${c.dataDir}`, `pg1-socket-path=${c.host}`, `pg1-port=${c.port}`, 'pg1-user=postgres', '',
  ].join('\n'));
  chownSync(conf, pgUid, pgGid);
  const bArgs = [`--config=${conf}`, '--stanza=bench'];
  const pArgs = ['--repo', pRepo, '--stanza', 'bench'];
  // Repository backups wait for their WAL in their own archive, so both tools archive every segment
  // (as repo-backup.mjs does); every other case runs with the same archiving on, for equal conditions.
  const archive = `pgbackrest --config=${conf} --stanza=bench archive-push %p && '${process.execPath}' '${PGPITR}' archive-push --repo '${pRepo}' --stanza bench %p`;
  await c.sql(`alter system set archive_mode = 'on'`);
  await c.sql(`alter system set archive_command = '${archive.replace(/'/g, "''")}'`);
  await c.restart();
  measured(process.execPath, [PGPITR, 'stanza-create', ...pArgs], env);
  measured('pgbackrest', [...bArgs, 'stanza-create'], env);
  const t0 = Date.now();
  await runPgbenchInit(c, opt.scale);
  await c.sql('vacuum analyze');
  await c.sql('checkpoint');
  await c.sql('select pg_switch_wal()');
  log(`pgbench init ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (!(await archiveIdle(c.dataDir))) throw new Error('the archiver did not catch up with the load within 120 s');
  info.dbBytes = Number((await c.sql('select sum(pg_database_size(oid))::bigint as b from pg_database'))[0].b);
  log(`cluster: ${(info.dbBytes / 2 ** 30).toFixed(2)} GiB of databases`);

  const bb = (extra) => (dir) => [join(PGBIN, 'pg_basebackup'), [...conn, '-D', dir, ...extra, '-c', 'fast']];
  const pb = (extra) => (dir) => [process.execPath, [PGPITR, 'basebackup', ...conn, '-D', dir, ...extra, '-c', 'fast']];
  const jobs = (n, m) => ['-j', String(n), '--read-method', m];

  if (opt.only !== 'compressed') {
    for (const nosync of [false, true]) {
      const base = ['-Fp', '-Xstream', ...(nosync ? ['-N'] : [])];
      const vs = [
        { id: 'pgbb', label: 'pg_basebackup', argv: bb(base) },
        { id: 'single', label: 'pgpitr basebackup (single stream)', argv: pb(base) },
      ];
      for (const m of opt.methods) {
        for (const n of [1, 2]) vs.push({ id: `j${n}-${m}`, label: `pgpitr basebackup -j ${n} --read-method ${m}`, argv: pb([...base, ...jobs(n, m)]) });
      }
      cases.push({ key: nosync ? 'plain-N' : 'plain', title: `plain \`${base.join(' ')} -c fast\`${nosync ? ' (no sync)' : ' (synced)'}`, variants: vs });
    }
  }
  if (opt.only !== 'plain') {
    for (const comp of opt.compress) {
      const z = comp === 'none' ? [] : ['-Z', `client-${comp}`];
      const tar = ['-Ft', '-Xstream', ...z];
      const repo = (extra) => () => [process.execPath, [PGPITR, 'backup', ...pArgs, '--start-fast', '--compress-type', comp, '--output', 'json', ...extra]];
      const pgbr = (pm) => () => ['pgbackrest', [...bArgs, '--type=full', `--compress-type=${PGBR_COMPRESS[comp]}`, `--process-max=${pm}`, 'backup']];
      const vs = [
        { id: 'pgbb', label: `pg_basebackup \`${tar.join(' ')}\``, argv: bb(tar) },
        { id: 'single', label: 'pgpitr basebackup (single stream)', argv: pb(tar) },
        ...opt.methods.map((m) => ({ id: `j2-${m}`, label: `pgpitr basebackup -j 2 --read-method ${m}`, argv: pb([...tar, ...jobs(2, m)]) })),
        { id: 'pgbr1', label: 'pgBackRest --process-max=1', argv: pgbr(1), repo: 'pgbr' },
        { id: 'pgbr2', label: 'pgBackRest --process-max=2', argv: pgbr(2), repo: 'pgbr' },
        { id: 'repo', label: 'pgpitr backup (single stream)', argv: repo([]), repo: 'pgpitr' },
      ];
      if (repoJobs) {
        for (const m of opt.methods) {
          for (const n of [1, 2]) vs.push({ id: `repo-j${n}-${m}`, label: `pgpitr backup -j ${n} --read-method ${m}`, argv: repo(jobs(n, m)), repo: 'pgpitr' });
        }
      }
      cases.push({ key: comp, title: `compression ${comp}: tar \`${tar.join(' ')} -c fast\` and repository full backups`, variants: vs });
    }
  }

  for (const cs of cases) {
    samples[cs.key] = Object.fromEntries(cs.variants.map((v) => [v.id, []]));
    for (let run = 0; run < opt.runs; run++) {
      // Rotate the order every repetition, so that no tool always runs right after the same one.
      const k = run % cs.variants.length;
      for (const v of [...cs.variants.slice(k), ...cs.variants.slice(0, k)]) {
        const fk = `${cs.key}/${v.id}`;
        if (failures[fk]) continue;
        const dir = join(outDir, `${cs.key}-${v.id}-${run}`);
        await archiveIdle(c.dataDir);
        spawnSync('sync');
        warm(c.dataDir);
        const [cmd, args] = v.argv(dir);
        let r;
        try {
          r = measured(cmd, args, env);
        } catch (e) {
          failures[fk] = String(e.message ?? e).trim().split('\n').filter(Boolean).slice(-6).join('\n');
          log(`${cs.key} ${v.label}: FAILED, skipped from now on\n    ${failures[fk].replace(/\n/g, '\n    ')}`);
          rmSync(dir, { recursive: true, force: true });
          continue;
        }
        let bytes;
        if (v.repo === 'pgpitr') {
          try { bytes = treeBytes(join(pRepo, 'bench', 'backup', JSON.parse(r.out).id)); } catch { /* size unknown */ }
          measured(process.execPath, [PGPITR, 'expire', ...pArgs, '--retention-full', '1'], env);
        } else if (v.repo === 'pgbr') {
          const sets = readdirSync(join(bRepo, 'backup', 'bench')).filter((n) => /F$/.test(n)).sort();
          bytes = treeBytes(join(bRepo, 'backup', 'bench', sets.at(-1)));
          measured('pgbackrest', [...bArgs, '--repo1-retention-full=1', 'expire'], env);
        } else {
          bytes = treeBytes(dir);
          rmSync(dir, { recursive: true, force: true });
        }
        spawnSync('sync');
        samples[cs.key][v.id].push({ ...r, bytes });
        log(`${cs.key} ${v.label}: ${r.s.toFixed(2)} s, user ${r.user.toFixed(2)} s, sys ${r.sys.toFixed(2)} s, ${r.rssMb.toFixed(0)} MB`);
      }
    }
    writeResults(false);
  }
} catch (e) {
  notes.push(`Run aborted: ${String(e.message ?? e).split('\n')[0]}`);
  process.exitCode = 1;
  process.stderr.write(`${e.stack ?? e}\n`);
} finally {
  await destroyAll();
  if (snapshot) rmSync(snapshot, { recursive: true, force: true });
}
writeResults(true);
log(`results in ${opt.out}`);

function stats(caseKey, id) {
  const xs = samples[caseKey]?.[id] ?? [];
  if (!xs.length) return undefined;
  const bytes = xs.map((x) => x.bytes).filter((b) => b !== undefined);
  return {
    s: median(xs.map((x) => x.s)), user: median(xs.map((x) => x.user)), sys: median(xs.map((x) => x.sys)),
    rss: Math.max(...xs.map((x) => x.rssMb)), bytes: bytes.length ? median(bytes) : undefined, runs: xs.map((x) => x.s),
  };
}

function writeResults(final) {
  const f2 = (x) => (x === undefined ? '–' : x.toFixed(2));
  const lines = [
    HEADING, '',
    ...(final ? [] : ['**Incomplete: the benchmark is still running or was interrupted.**', '']),
    `Run ${started.toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ` +
      `\`node bench/parallel-backup.mjs --scale ${opt.scale} --runs ${opt.runs} --methods ${opt.methods.join(',')} --compress ${opt.compress.join(',')}\`; ` +
      `PostgreSQL 15, pgbench scale ${opt.scale} (${info.dbBytes ? (info.dbBytes / 2 ** 30).toFixed(2) : '?'} GiB of databases); ${info.pgbackrest}; ` +
      `pgpitr dist/ built ${info.builtAt} from ${info.commit}${info.dirty ? ` with ${info.dirty} uncommitted file(s) in src/` : ''}${snapshot ? ' (run from a private copy)' : ''}.`,
    `One cluster (fsync=off, autovacuum=off, archiving to both repositories on throughout); before each run: archiver idle, \`sync\`, data directory read into the page cache. ` +
      `${opt.runs} run(s) per tool and case, tools in rotating order; wall / user / sys = median seconds (GNU time), RSS = largest run. ` +
      'Tools run as `postgres`; pgpitr and pg_basebackup with `-h SOCKET -p PORT -U postgres -c fast`; pgBackRest and pgpitr backup `--type=full`/`--start-fast`, each followed (untimed) by an expire to one full backup.',
    '',
  ];
  for (const cs of cases) {
    lines.push(`### ${cs.title}`, '', '| tool | wall s | user s | sys s | peak RSS MB | output MiB | all runs s |', '|---|---:|---:|---:|---:|---:|---|');
    for (const v of cs.variants) {
      const s = stats(cs.key, v.id);
      const fail = failures[`${cs.key}/${v.id}`];
      if (!s) lines.push(`| ${v.label} | ${fail ? 'failed' : '–'} | | | | | |`);
      else {
        lines.push(`| ${v.label} | ${f2(s.s)} | ${f2(s.user)} | ${f2(s.sys)} | ${s.rss.toFixed(0)}${v.id !== 'pgbb' && !v.id.startsWith('pgbr') && s.rss >= TARGET.rssMb ? ' ✗' : ''} | ` +
          `${s.bytes === undefined ? '–' : (s.bytes / 2 ** 20).toFixed(0)} | ${s.runs.map(f2).join(', ')} |`);
      }
    }
    lines.push('');
    for (const v of cs.variants) {
      const fail = failures[`${cs.key}/${v.id}`];
      if (fail) lines.push(`- ${v.label} failed and was skipped: \`${fail.replace(/\s*\n\s*/g, ' ⏎ ').replace(/`/g, "'").slice(0, 400)}\``);
    }
    if (cs.variants.some((v) => failures[`${cs.key}/${v.id}`])) lines.push('');
  }

  // The issue's ratios: a / b of median wall times, with the target and a verdict.
  const ratios = [];
  const ratio = (what, ck, a, b, target, strict) => {
    const x = stats(ck, a);
    const y = stats(ck, b);
    const cs = cases.find((c) => c.key === ck);
    if (!cs || !cs.variants.some((v) => v.id === a) || !cs.variants.some((v) => v.id === b)) return;
    const r = x && y ? x.s / y.s : undefined;
    const ok = r === undefined ? '–' : (strict ? r < target : r <= target) ? 'ok' : '**miss**';
    ratios.push(`| ${ck} | ${what} | ${f2(r)} | ${strict ? '<' : '≤'} ${target.toFixed(2)} | ${ok} |`);
  };
  for (const ck of ['plain', 'plain-N', ...opt.compress]) {
    ratio('single stream / pg_basebackup', ck, 'single', 'pgbb', TARGET.single, false);
    for (const m of opt.methods) {
      ratio(`basebackup -j 2 ${m} / pg_basebackup`, ck, `j2-${m}`, 'pgbb', TARGET.parallelVsPgbb, false);
      ratio(`backup -j 2 ${m} / pgBackRest pm2`, ck, `repo-j2-${m}`, 'pgbr2', TARGET.parallelVsPgbr, true);
      ratio(`basebackup -Ft -j 2 ${m} / pgBackRest pm2 (not a repository; for reference)`, ck, `j2-${m}`, 'pgbr2', TARGET.parallelVsPgbr, true);
    }
    ratio('backup (single stream) / pgBackRest pm2 (for reference)', ck, 'repo', 'pgbr2', TARGET.parallelVsPgbr, true);
  }
  let maxRss = 0;
  for (const cs of cases) {
    for (const v of cs.variants) {
      if (v.id === 'pgbb' || v.id.startsWith('pgbr')) continue;
      const s = stats(cs.key, v.id);
      if (s) maxRss = Math.max(maxRss, s.rss);
    }
  }
  lines.push('### Ratios (median wall time)', '', '| case | ratio | value | target | |', '|---|---|---:|---:|---|', ...ratios,
    `| all | pgpitr peak RSS MB (any row) | ${maxRss.toFixed(0)} | < ${TARGET.rssMb} | ${maxRss < TARGET.rssMb ? 'ok' : '**miss**'} |`, '');
  if (notes.length) lines.push(...notes.map((n) => `- ${n}`), '');
  replaceSection(opt.out, HEADING, lines.join('\n'));
}
