#!/usr/bin/env node
// Benchmark: per-segment cost of pgpitr archive-push / archive-get vs pgBackRest
// (synchronous mode), one process per segment, sequentially, as archive_command /
// restore_command run them. See bench/README-archive.md.
//
//   node bench/archive.mjs [--segments 30] [--reps 2] [--compress zstd,lz4] [--no-get] [--out bench/RESULTS.md]
//
// Needs: dist/ built, PostgreSQL 15 (Debian paths), pgbackrest on PATH, root (runs tools as `postgres`).
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, copyFileSync, writeFileSync, readFileSync, rmSync, chownSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection } from './results-file.mjs';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const { TestCluster, destroyAll } = await import(join(root, 'dist/test/harness/cluster.js'));
const PGPITR = join(root, 'dist/src/cli/main.js');
const PGBIN = '/usr/lib/postgresql/15/bin';

// ---------- options ----------
const argv = process.argv.slice(2);
const opt = { segments: 30, reps: 2, compress: ['zstd', 'lz4'], get: true, out: join(here, 'RESULTS.md'), scale: 50 };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--segments') opt.segments = Number(argv[++i]);
  else if (a === '--reps') opt.reps = Number(argv[++i]);
  else if (a === '--scale') opt.scale = Number(argv[++i]);
  else if (a === '--compress') opt.compress = argv[++i].split(',');
  else if (a === '--no-get') opt.get = false;
  else if (a === '--out') opt.out = resolve(argv[++i]);
  else throw new Error(`unknown option ${a}`);
}
const PGBR_COMPRESS = { zstd: 'zst', lz4: 'lz4', gzip: 'gz', none: 'none' };

// ---------- helpers ----------
const pgUid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
const pgGid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
const baseEnv = { PATH: process.env.PATH, HOME: '/var/lib/postgresql', LANG: 'C' };

/** Run a command as postgres (uid/gid set directly by spawn, no runuser overhead); returns wall ms. */
function timed(cmd, args, { env = {}, check = true } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { uid: pgUid, gid: pgGid, env: { ...baseEnv, ...env }, cwd: '/tmp', encoding: 'utf8', maxBuffer: 1 << 26 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (check && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return ms;
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const f1 = (x) => x.toFixed(1);
const f2 = (x) => x.toFixed(2);
function dirBytes(d) {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) n += dirBytes(p); else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}
function findFiles(d, pred, out = []) {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) findFiles(p, pred, out); else if (pred(e.name, p)) out.push(p);
  }
  return out;
}
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');
function mkdirPg(p) { mkdirSync(p, { recursive: true }); chownSync(p, pgUid, pgGid); return p; }

// ---------- run ----------
const started = new Date();
const results = []; // {compress, op, tool, samples[]}
const notes = [];
let info = {};
try {
  console.error(`[archive-bench] creating cluster, pgbench -i -s ${opt.scale}`);
  const cluster = await TestCluster.create({
    version: 15, name: 'abench',
    conf: { max_wal_size: '4GB', min_wal_size: '1GB', wal_keep_size: '4GB', checkpoint_timeout: '1h' },
  });
  const cenv = cluster.connectionEnv();
  info.server = (await cluster.sql('select version() as v'))[0]?.v ?? '';
  const scratch = cluster.tempDir('scratch');
  const inputs = mkdirPg(join(scratch, 'inputs'));

  // WAL: pgbench init + a couple of switches, until enough complete segments exist.
  const pgb = spawnSync(join(PGBIN, 'pgbench'), ['-i', '-s', String(opt.scale), '-q'], { env: { ...process.env, ...cenv }, encoding: 'utf8' });
  if (pgb.status !== 0) throw new Error(`pgbench -i failed: ${pgb.stderr}`);
  await cluster.sql('checkpoint');
  await cluster.sql('select pg_switch_wal()');
  const cur = (await cluster.sql('select pg_walfile_name(pg_current_wal_lsn()) as f'))[0].f;
  const walDir = join(cluster.dataDir, 'pg_wal');
  const segs = readdirSync(walDir).filter((n) => /^[0-9A-F]{24}$/.test(n) && n < cur).sort();
  if (segs.length < opt.segments) notes.push(`only ${segs.length} complete segments available (wanted ${opt.segments})`);
  const chosen = segs.slice(0, opt.segments);
  for (const s of chosen) { copyFileSync(join(walDir, s), join(inputs, s)); chownSync(join(inputs, s), pgUid, pgGid); }
  const inputBytes = chosen.reduce((a, s) => a + statSync(join(inputs, s)).size, 0);
  info.segments = chosen.length; info.first = chosen[0]; info.last = chosen.at(-1); info.inputBytes = inputBytes;
  console.error(`[archive-bench] ${chosen.length} segments ${chosen[0]}..${chosen.at(-1)}`);
  execFileSync('sync');

  // versions
  info.pgbackrest = spawnSync('pgbackrest', ['version'], { encoding: 'utf8' }).stdout.trim();
  info.pgpitr = spawnSync('node', [PGPITR, '--version'], { encoding: 'utf8' }).stdout.trim() || '(unknown)';

  // node start-up for context
  const nodeStart = [];
  for (let i = 0; i < 10; i++) nodeStart.push(timed('node', ['-e', '0']));
  results.push({ compress: '-', op: 'start-up', tool: '`node -e 0`', samples: nodeStart });
  const pgbrVer = [];
  for (let i = 0; i < 10; i++) pgbrVer.push(timed('pgbackrest', ['version']));
  results.push({ compress: '-', op: 'start-up', tool: '`pgbackrest version`', samples: pgbrVer });

  for (const comp of opt.compress) {
    const samples = { cp: [], pgpitr: [], pgbackrest: [] };
    const gets = { pgpitr: [], pgbackrest: [] };
    const sizes = {};
    for (let rep = 0; rep < opt.reps; rep++) {
      const work = mkdirPg(join(scratch, `${comp}-${rep}`));
      const cpDest = mkdirPg(join(work, 'cp'));
      const pRepo = mkdirPg(join(work, 'pgpitr-repo'));
      const bRepo = mkdirPg(join(work, 'pgbr-repo'));
      const bMisc = mkdirPg(join(work, 'pgbr-misc'));
      const conf = join(work, 'pgbackrest.conf');
      writeFileSync(conf, [
        '[global]', `repo1-path=${bRepo}`, `compress-type=${PGBR_COMPRESS[comp]}`,
        'log-level-console=warn', 'log-level-stderr=warn', 'log-level-file=off',
        `log-path=${bMisc}`, `lock-path=${bMisc}`, `spool-path=${bMisc}`, 'archive-async=n', '',
        '[bench]', `pg1-path=${cluster.dataDir}`, `pg1-socket-path=${cenv.PGHOST}`, `pg1-port=${cenv.PGPORT}`, `pg1-user=postgres`, '',
      ].join('\n'));
      chownSync(conf, pgUid, pgGid);
      const bArgs = [`--config=${conf}`, '--stanza=bench'];
      const pArgs = ['--repo', pRepo, '--stanza', 'bench'];
      timed('node', [PGPITR, 'stanza-create', ...pArgs], { env: cenv });
      timed('pgbackrest', [...bArgs, 'stanza-create'], { env: cenv });
      execFileSync('sync');

      // push: per segment, the three tools in rotating order (same cache state for all)
      const tools = {
        cp: (p) => timed('sh', ['-c', 'cp "$1" "$2" && sync', 'sh', p, join(cpDest, p.split('/').at(-1))]),
        pgpitr: (p) => timed('node', [PGPITR, 'archive-push', ...pArgs, '--compress-type', comp, p]),
        pgbackrest: (p) => timed('pgbackrest', [...bArgs, 'archive-push', p]),
      };
      const order = ['cp', 'pgpitr', 'pgbackrest'];
      chosen.forEach((s, i) => {
        const p = join(inputs, s);
        for (let k = 0; k < 3; k++) { const t = order[(i + k + rep) % 3]; samples[t].push(tools[t](p)); }
      });
      if (rep === 0) {
        sizes.pgpitr = dirBytes(join(pRepo));
        sizes.pgbackrest = dirBytes(join(bRepo, 'archive'));
        sizes.pgpitrFiles = findFiles(pRepo, (n) => n.startsWith(chosen[0].slice(0, 8))).length;
        sizes.pgbackrestFiles = findFiles(join(bRepo, 'archive'), (n) => /^[0-9A-F]{24}-/.test(n)).length;
      }

      if (opt.get) {
        const gdir = mkdirPg(join(work, 'get'));
        chosen.forEach((s, i) => {
          const order2 = (i + rep) % 2 ? ['pgbackrest', 'pgpitr'] : ['pgpitr', 'pgbackrest'];
          for (const t of order2) {
            const dest = join(gdir, `${t}-${s}`);
            const ms = t === 'pgpitr'
              ? timed('node', [PGPITR, 'archive-get', ...pArgs, s, dest])
              : timed('pgbackrest', [...bArgs, 'archive-get', s, dest]);
            gets[t].push(ms);
            if (i === 0 || i === chosen.length - 1) {
              if (sha(dest) !== sha(join(inputs, s))) throw new Error(`${t} archive-get ${s}: content differs from input`);
            }
            rmSync(dest);
          }
        });
      }
      rmSync(work, { recursive: true, force: true });
      execFileSync('sync');
    }
    for (const t of ['cp', 'pgpitr', 'pgbackrest']) results.push({ compress: comp, op: 'archive-push', tool: t, samples: samples[t], size: sizes[t], files: sizes[`${t}Files`] });
    if (opt.get) for (const t of ['pgpitr', 'pgbackrest']) results.push({ compress: comp, op: 'archive-get', tool: t, samples: gets[t] });
  }
} finally {
  await destroyAll();
}

// ---------- report ----------
const cpus = os.cpus();
const machine = `${cpus.length} CPUs (${cpus[0]?.model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`;
const row = (r) => {
  const m = mean(r.samples);
  return `| ${r.compress} | ${r.op} | ${r.tool} | ${f1(m)} | ${f1(median(r.samples))} | ${f1(pct(r.samples, 0.9))} | ${f1(Math.min(...r.samples))}–${f1(Math.max(...r.samples))} | ${f1(1000 / m)} | ${r.size !== undefined ? (r.size / 2 ** 20).toFixed(1) + ` (${r.files} files)` : ''} |`;
};
const HEADING = '## archive-push / archive-get (bench/archive.mjs)';
const lines = [];
lines.push(HEADING, '');
lines.push(`Generated by \`node bench/archive.mjs --segments ${opt.segments} --reps ${opt.reps} --compress ${opt.compress.join(',')}${opt.get ? '' : ' --no-get'}\` (see bench/README-archive.md).`, '');
lines.push(`- Date: ${started.toISOString()}`);
lines.push(`- Machine: ${machine}`);
lines.push(`- Node: ${process.version}; ${info.pgbackrest}; ${info.pgpitr} (dist/ as built)`);
lines.push(`- Server: ${info.server}`);
lines.push(`- Input: ${info.segments} complete 16 MiB WAL segments (${info.first}..${info.last}, ${(info.inputBytes / 2 ** 20).toFixed(0)} MiB) produced by \`pgbench -i -s ${opt.scale}\`, copied out of pg_wal into a scratch dir (page-cache hot); the same files for every tool.`);
lines.push(`- Method: one process per segment, sequentially, as archive_command/restore_command run them, each started directly as the \`postgres\` user by Node's spawnSync; wall time from spawn to exit. For each segment the tools run back to back in rotating order. ${opt.reps} repetition(s) with fresh repositories, so ${info.segments * opt.reps} samples per row. pgBackRest in synchronous mode (archive-async=n), default compress levels on both sides (zstd 3, lz4 1), repositories on the same local filesystem. Baseline: \`sh -c 'cp SEG DEST && sync'\`. archive-get restores into a new file and the output is checked (sha256) against the input for the first and last segment.`);
lines.push('');
lines.push('| compress | operation | tool | mean ms | median ms | p90 ms | min–max ms | segments/s (1/mean) | repo size MiB |');
lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of results) lines.push(row(r));
lines.push('');
lines.push('Ratio pgpitr / pgBackRest (mean ms per segment):', '');
lines.push('| compress | archive-push | archive-get |', '|---|---:|---:|');
for (const comp of opt.compress) {
  const g = (op, t) => results.find((r) => r.compress === comp && r.op === op && r.tool === t);
  const push = mean(g('archive-push', 'pgpitr').samples) / mean(g('archive-push', 'pgbackrest').samples);
  const get = opt.get ? mean(g('archive-get', 'pgpitr').samples) / mean(g('archive-get', 'pgbackrest').samples) : NaN;
  lines.push(`| ${comp} | **${f2(push)}** | ${opt.get ? `**${f2(get)}**` : 'not measured'} |`);
}
lines.push('');
for (const n of notes) lines.push(`- Note: ${n}`);
if (notes.length) lines.push('');
lines.push('These numbers are the synchronous, one-process-per-segment cost only, most of it Node\'s start-up and module loading for pgpitr. Asynchronous archiving (pgpitr `--archive-async`, pgBackRest `archive-async=y`), where one background process stores many segments, is measured in the next section.');
lines.push('');
const section = lines.join('\n');
console.log(section);

replaceSection(opt.out, HEADING, section);
console.error(`[archive-bench] wrote section to ${opt.out}`);
