#!/usr/bin/env node
// Benchmark: pgpitr basebackup vs PostgreSQL 15's pg_basebackup on the same pgbench cluster.
//
//   node bench/basebackup.mjs [--scale N] [--runs N] [--case NAME]... [--out FILE]
//
// Needs a built tree (npx tsc -p tsconfig.json) and GNU time at /usr/bin/time.
// See bench/README.md for what it measures and how to read bench/RESULTS.md.

import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync, copyFileSync, cpSync, openSync, readSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const DIST = join(ROOT, 'dist');
const PG_VERSION = 15;
const PG_BASEBACKUP = `/usr/lib/postgresql/${PG_VERSION}/bin/pg_basebackup`;
const TIME = '/usr/bin/time';
const RUN_TIMEOUT_MS = 60 * 60 * 1000;

// Target every case has to meet.
const TARGET_RATIO = 1.10;
const TARGET_RSS_MB = 200;

const CASES = [
  { name: 'plain', label: '-Fp -Xstream', args: ['-Fp', '-Xstream'] },
  // Without fsync: syncing 1.5 GB takes most of a synced run and hides what the pipeline costs.
  { name: 'plain-nosync', label: '-Fp -Xstream -N', args: ['-Fp', '-Xstream', '-N'] },
  { name: 'tar', label: '-Ft -Xstream', args: ['-Ft', '-Xstream'] },
  { name: 'tar-nosync', label: '-Ft -Xstream -N', args: ['-Ft', '-Xstream', '-N'] },
  { name: 'gzip', label: '-Ft -Xstream -Z client-gzip', args: ['-Ft', '-Xstream', '-Z', 'client-gzip'] },
  { name: 'lz4', label: '-Ft -Xstream -Z client-lz4', args: ['-Ft', '-Xstream', '-Z', 'client-lz4'] },
  { name: 'lz4-nosync', label: '-Ft -Xstream -Z client-lz4 -N', args: ['-Ft', '-Xstream', '-Z', 'client-lz4', '-N'] },
  { name: 'zstd', label: '-Ft -Xstream -Z client-zstd', args: ['-Ft', '-Xstream', '-Z', 'client-zstd'] },
  { name: 'zstd-nosync', label: '-Ft -Xstream -Z client-zstd -N', args: ['-Ft', '-Xstream', '-Z', 'client-zstd', '-N'] },
];

function usage(code) {
  const text = `usage: node bench/basebackup.mjs [options]

  --scale N      pgbench scale factor to load (default 100, about 1.5 GB)
  --runs N       repetitions per tool and case (default 5)
  --case NAME    only run this case (repeatable): ${CASES.map((c) => c.name).join(', ')}
  --out FILE     results file (default bench/RESULTS.md)
  --no-snapshot  run pgpitr straight from dist/ instead of a private copy made at start
  --tcp          both tools connect over TCP (127.0.0.1) instead of the Unix socket
  -h, --help     show this help
`;
  (code === 0 ? process.stdout : process.stderr).write(text);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { scale: 100, runs: 5, cases: [], out: join(HERE, 'RESULTS.md'), snapshot: true, tcp: false };
  const positiveInt = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) {
      process.stderr.write(`${flag} needs a positive integer, got ${JSON.stringify(v)}\n`);
      usage(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let value;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) {
        process.stderr.write(`${a} needs a value\n`);
        usage(2);
      }
      return argv[++i];
    };
    switch (a) {
      case '--scale': opts.scale = positiveInt(a, next()); break;
      case '--runs': opts.runs = positiveInt(a, next()); break;
      case '--case': {
        const name = next();
        if (!CASES.some((c) => c.name === name)) {
          process.stderr.write(`unknown case ${name}\n`);
          usage(2);
        }
        opts.cases.push(name);
        break;
      }
      case '--out': opts.out = resolve(next()); break;
      case '--no-snapshot': opts.snapshot = false; break;
      case '--tcp': opts.tcp = true; break;
      case '-h': case '--help': usage(0); break;
      default:
        process.stderr.write(`unknown argument ${a}\n`);
        usage(2);
    }
  }
  return opts;
}

function log(msg) {
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Apparent size in bytes and file count of everything under path (like du -sb). */
function treeSize(path) {
  let bytes = 0;
  let files = 0;
  const walk = (p) => {
    const st = lstatSync(p);
    if (st.isDirectory()) {
      for (const e of readdirSync(p)) walk(join(p, e));
    } else {
      bytes += st.size;
      files += 1;
    }
  };
  if (existsSync(path)) walk(path);
  // Tar format: sizes of the archives themselves (base.tar.gz, pg_wal.tar, ...).
  let base;
  let wal;
  if (existsSync(path)) {
    for (const e of readdirSync(path)) {
      if (/^base\.tar/.test(e)) base = lstatSync(join(path, e)).size;
      if (/^pg_wal\.tar/.test(e)) wal = { name: e, bytes: lstatSync(join(path, e)).size };
    }
  }
  return { bytes, files, base, wal };
}

/** utime+stime (clock ticks) of exited, reaped children of the postmaster (walsenders, backends). */
function postmasterChildTicks(pid) {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after ")" start at field 3 (state); cutime = field 16, cstime = field 17
    return Number(f[16 - 3]) + Number(f[17 - 3]);
  } catch {
    return undefined;
  }
}
const CLK_TCK = Number(sh('getconf', ['CLK_TCK'])) || 100;

/**
 * Reads every file of the data directory, so that each run starts with the data in
 * the page cache: this VM reclaims cold page cache (DAMON), and a run that found the
 * database evicted read it from disk (server CPU and wall time up by half) whichever
 * tool it was.
 */
function warmPageCache(root) {
  const t0 = Date.now();
  const buf = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        let fd;
        try { fd = openSync(p, 'r'); } catch { continue; }
        try { for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) bytes += n; } catch { /* vanished */ } finally { closeSync(fd); }
      }
    }
  };
  walk(root);
  return { bytes, seconds: (Date.now() - t0) / 1000 };
}

/** Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat). */
function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    return busy / CLK_TCK;
  } catch {
    return undefined;
  }
}

/**
 * Copies dist/src (plus package.json and a node_modules link) to a temp dir, so that colleagues
 * rebuilding dist/ while the benchmark runs cannot change the code under test mid-run.
 */
function snapshotDist() {
  const dir = mkdtempSync(join(os.tmpdir(), 'pgpitr-bench-dist-'));
  cpSync(join(DIST, 'src'), join(dir, 'dist', 'src'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json')); // "type": "module", version
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

let currentChild;
process.on('exit', () => {
  if (currentChild?.pid !== undefined && currentChild.exitCode === null) {
    try { process.kill(-currentChild.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/** Runs argv under GNU time; resolves with exit status, stderr and the time figures. */
function timed(argv, env) {
  const timeFile = join(os.tmpdir(), `pgpitr-bench-time-${process.pid}.txt`);
  rmSync(timeFile, { force: true });
  return new Promise((resolveRun, reject) => {
    const child = spawn(TIME, ['-o', timeFile, '-f', '%e %M %U %S %x', ...argv], {
      env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    currentChild = child;
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, RUN_TIMEOUT_MS);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      currentChild = undefined;
      const raw = existsSync(timeFile) ? readFileSync(timeFile, 'utf8') : '';
      rmSync(timeFile, { force: true });
      // GNU time prints "Command exited with non-zero status N" before the format line.
      const line = raw.trim().split('\n').pop() ?? '';
      const [wall, rssKb, user, sys] = line.split(/\s+/).map(Number);
      resolveRun({
        code, signal, timedOut,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        wall, rssKb, user, sys,
      });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mb = (kb) => kb / 1024;
const fmt = (x, d = 2) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const fmtBytes = (b) => (b === undefined ? '–' : b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(2)} GiB`
  : b >= 1024 ** 2 ? `${(b / 1024 ** 2).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} kiB`);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const cases = opts.cases.length ? CASES.filter((c) => opts.cases.includes(c.name)) : CASES;
  const builtCli = join(DIST, 'src', 'cli', 'main.js');
  for (const [p, what] of [[builtCli, 'pgpitr build (run npx tsc -p tsconfig.json)'], [PG_BASEBACKUP, 'pg_basebackup 15'], [TIME, 'GNU time (apt-get install -y time)']]) {
    if (!existsSync(p)) throw new Error(`missing ${what}: ${p}`);
  }
  const { TestCluster, destroyAll } = await import(join(DIST, 'test', 'harness', 'cluster.js'));
  const { runPgbenchInit } = await import(join(DIST, 'test', 'harness', 'data.js'));

  const started = new Date();
  const results = []; // { case, tool, rep, ok, wall, rssKb, user, sys, bytes, files, serverCpu, error }
  let info = {};
  const snapshot = opts.snapshot ? snapshotDist() : undefined;
  const PGPITR = snapshot ? join(snapshot, 'dist', 'src', 'cli', 'main.js') : builtCli;
  info.build = {
    commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) || 'unknown',
    dirty: (spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout ?? '')
      .split('\n').filter(Boolean).map((l) => l.slice(3)),
    builtAt: lstatSync(builtCli).mtime.toISOString(),
    snapshot: Boolean(snapshot),
  };
  if (snapshot) log(`running pgpitr from a copy of dist/ in ${snapshot}`);
  try {
    log(`creating PostgreSQL ${PG_VERSION} cluster`);
    // autovacuum off: the data is static once loaded, and a worker waking mid-run (to
    // analyze what pgbench just wrote) stole a core from whichever tool ran then.
    const cluster = await TestCluster.create({ version: PG_VERSION, name: 'bench', conf: { autovacuum: 'off' } });
    log(`loading pgbench scale ${opts.scale}`);
    const t0 = Date.now();
    await runPgbenchInit(cluster, opts.scale);
    log(`pgbench init took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await cluster.sql('VACUUM ANALYZE');
    await cluster.sql('CHECKPOINT');
    const [ver] = await cluster.sql('SELECT version() AS v, pg_database_size(current_database())::bigint AS db, ' +
      '(SELECT sum(pg_database_size(oid)) FROM pg_database)::bigint AS alldb');
    Object.assign(info, { pgVersion: ver.v, dbSize: Number(ver.db), allDbSize: Number(ver.alldb) });
    log(`database size ${fmtBytes(info.dbSize)} (all databases ${fmtBytes(info.allDbSize)})`);

    // Client environment: nothing PG* from our caller, connection given explicitly to both tools.
    // NODE_EXTRA_CA_CERTS neither (a sandbox's npm proxy sets it; Node then builds its root store at every start, ~80 ms).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG') && k !== 'NODE_EXTRA_CA_CERTS'));
    Object.assign(env, cluster.connectionEnv(), { LC_ALL: 'C' }, opts.tcp ? { PGHOST: '127.0.0.1' } : {});
    const conn = ['-h', opts.tcp ? '127.0.0.1' : cluster.host, '-p', String(cluster.port), '-U', 'postgres'];
    const outRoot = cluster.tempDir('bench-out');
    const tools = {
      pg_basebackup: (dir, c) => [PG_BASEBACKUP, ...conn, '-D', dir, ...c.args, '-c', 'fast'],
      pgpitr: (dir, c) => [process.execPath, PGPITR, 'basebackup', ...conn, '-D', dir, ...c.args, '-c', 'fast'],
    };
    info.pgbasebackupVersion = sh(PG_BASEBACKUP, ['--version']);
    info.pgpitrVersion = sh(process.execPath, [PGPITR, 'basebackup', '--version']) || sh(process.execPath, [PGPITR, '--version']);

    for (const c of cases) {
      for (let rep = 1; rep <= opts.runs; rep++) {
        // Alternate tools; swap who goes first on every repetition to cancel order effects.
        const order = rep % 2 === 1 ? ['pg_basebackup', 'pgpitr'] : ['pgpitr', 'pg_basebackup'];
        for (const tool of order) {
          const dir = join(outRoot, `${c.name}-${tool}-${rep}`);
          spawnSync('sync');
          const warm = warmPageCache(cluster.dataDir);
          if (warm.seconds > 1) log(`page cache warmed in ${warm.seconds.toFixed(2)} s (${fmtBytes(warm.bytes)}): data had been evicted`);
          const pmPid = cluster.postmasterPid();
          const ticksBefore = postmasterChildTicks(pmPid);
          const busyBefore = machineBusySeconds();
          const r = await timed(tools[tool](dir, c), env);
          const busyAfter = machineBusySeconds();
          const ticksAfter = postmasterChildTicks(pmPid);
          const serverCpu = ticksBefore !== undefined && ticksAfter !== undefined ? (ticksAfter - ticksBefore) / CLK_TCK : undefined;
          // CPU used on the machine during the run by anything other than this client and its walsenders
          // (checkpointer, kernel writeback, and any unrelated work, e.g. someone compiling).
          const otherCpu = busyBefore !== undefined && busyAfter !== undefined && serverCpu !== undefined && !Number.isNaN(r.user)
            ? Math.max(0, busyAfter - busyBefore - r.user - r.sys - serverCpu) : undefined;
          const ok = r.code === 0 && !r.timedOut;
          const size = treeSize(dir);
          const rec = {
            case: c.name, tool, rep, ok, wall: r.wall, rssKb: r.rssKb, user: r.user, sys: r.sys,
            bytes: size.bytes, files: size.files, base: size.base, wal: size.wal, serverCpu, otherCpu,
          };
          if (!ok) {
            const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
            rec.error = `${how}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-8).join('\n')}`;
          }
          results.push(rec);
          log(`${c.name.padEnd(5)} ${tool.padEnd(13)} #${rep}: ${ok ? 'ok ' : 'FAILED'} wall ${fmt(r.wall)} s, ` +
            `user ${fmt(r.user)} s, sys ${fmt(r.sys)} s, server ${fmt(serverCpu)} s, other ${fmt(otherCpu)} s, peak RSS ${fmt(mb(r.rssKb), 1)} MB, ` +
            `output ${fmtBytes(size.bytes)} in ${size.files} files${ok ? '' : `\n    ${rec.error.replace(/\n/g, '\n    ')}`}`);
          rmSync(dir, { recursive: true, force: true });
        }
      }
      writeResults(opts, info, started, cases, results, false); // partial results after each case
    }
  } finally {
    log('stopping cluster');
    await destroyAll();
    if (snapshot) rmSync(snapshot, { recursive: true, force: true });
  }
  writeResults(opts, info, started, cases, results, true);
  log(`wrote ${opts.out}`);
}

function summarize(results, caseName, tool) {
  const rs = results.filter((r) => r.case === caseName && r.tool === tool);
  const ok = rs.filter((r) => r.ok);
  const failed = rs.filter((r) => !r.ok);
  if (ok.length === 0) return { runs: rs.length, ok: 0, failed };
  return {
    runs: rs.length,
    ok: ok.length,
    failed,
    wall: median(ok.map((r) => r.wall)),
    walls: ok.map((r) => r.wall),
    rssKb: Math.max(...ok.map((r) => r.rssKb)),
    user: median(ok.map((r) => r.user)),
    sys: median(ok.map((r) => r.sys)),
    serverCpu: ok.every((r) => r.serverCpu !== undefined) ? median(ok.map((r) => r.serverCpu)) : undefined,
    otherCpu: ok.every((r) => r.otherCpu !== undefined) ? median(ok.map((r) => r.otherCpu)) : undefined,
    bytes: median(ok.map((r) => r.bytes)),
    files: median(ok.map((r) => r.files)),
    base: ok.every((r) => r.base !== undefined) ? median(ok.map((r) => r.base)) : undefined,
    wal: ok.every((r) => r.wal !== undefined) ? median(ok.map((r) => r.wal.bytes)) : undefined,
    walName: ok[0].wal?.name,
  };
}

function writeResults(opts, info, started, cases, results, final) {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const lines = [];
  lines.push('# pgpitr basebackup benchmark results', '');
  if (!final) lines.push('**Incomplete: the benchmark is still running or was interrupted.**', '');
  lines.push(
    `Generated by \`node bench/basebackup.mjs --scale ${opts.scale} --runs ${opts.runs}${opts.tcp ? ' --tcp' : ''}` +
      `${opts.cases.map((c) => ` --case ${c}`).join('')}\` (see bench/README.md).`,
    '',
    `- Date: ${started.toISOString()}`,
    `- Machine: ${os.availableParallelism?.() ?? os.cpus().length} CPUs (${cpu}), ` +
      `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`,
    `- Node: ${process.version}`,
    `- Server: ${info.pgVersion ?? 'n/a'}`,
    `- Client: ${info.pgbasebackupVersion ?? 'n/a'}; ${info.pgpitrVersion ?? 'n/a'}`,
    `- pgpitr build: dist/ compiled ${info.build?.builtAt ?? '?'} from commit ${info.build?.commit ?? '?'}` +
      `${info.build?.dirty?.length ? ` with uncommitted changes in ${info.build.dirty.join(', ')}` : ''}` +
      `${info.build?.snapshot ? '; run from a private copy of dist/ taken at start' : '; run straight from dist/'}`,
    `- Data: pgbench scale ${opts.scale}; pg_database_size('postgres') = ${fmtBytes(info.dbSize)} ` +
      `(${info.dbSize ?? '?'} bytes; all databases ${fmtBytes(info.allDbSize)})`,
    `- Server and client on the same host, ${opts.tcp ? 'TCP connection (127.0.0.1)' : 'Unix-socket connection'}, server fsync=off (harness default), autovacuum=off (static data, VACUUM ANALYZE after loading), ` +
      `shared_buffers=32MB; the data directory is read into the page cache before every run (this VM reclaims cold page cache); both clients fsync their output except in the cases with \`-N\`. Options common to both tools: \`-c fast\`.`,
    `- ${opts.runs} run(s) per tool and case, tools alternating (first tool swapped every repetition), ` +
      `each run into a new directory that is deleted afterwards (followed by \`sync\`).`,
    '',
    `**Target:** wall-time ratio pgpitr / pg_basebackup ≤ ${TARGET_RATIO.toFixed(2)} and pgpitr peak RSS < ${TARGET_RSS_MB} MB, ` +
      'for every case. Wall time = median over runs; peak RSS = max over runs (GNU time %M, maximum resident set size).',
    '',
  );

  const verdicts = [];
  for (const c of cases) {
    const a = summarize(results, c.name, 'pg_basebackup');
    const b = summarize(results, c.name, 'pgpitr');
    if (a.runs === 0 && b.runs === 0) continue;
    const ratio = a.ok && b.ok ? b.wall / a.wall : undefined;
    const misses = [];
    if (b.failed.length) misses.push(`pgpitr failed ${b.failed.length}/${b.runs} run(s)`);
    if (a.failed.length) misses.push(`pg_basebackup failed ${a.failed.length}/${a.runs} run(s)`);
    if (ratio !== undefined && ratio > TARGET_RATIO) misses.push(`ratio ${ratio.toFixed(2)} > ${TARGET_RATIO.toFixed(2)}`);
    if (b.ok && mb(b.rssKb) >= TARGET_RSS_MB) misses.push(`peak RSS ${mb(b.rssKb).toFixed(0)} MB ≥ ${TARGET_RSS_MB} MB`);
    if (!b.ok && !b.failed.length) misses.push('no pgpitr result');
    const verdict = misses.length ? `**MISSES TARGET** (${misses.join('; ')})` : 'meets target';
    verdicts.push({ c, ratio, rss: b.ok ? mb(b.rssKb) : undefined, verdict: misses.length ? 'MISS' : 'ok' });

    lines.push(`## \`${c.label}\` — ${verdict}`, '');
    lines.push(
      '| | pg_basebackup | pgpitr | pgpitr / pg_basebackup |',
      '|---|---:|---:|---:|',
      `| wall s (median) | ${fmt(a.wall)} | ${fmt(b.wall)} | ${ratio === undefined ? '–' : `**${ratio.toFixed(2)}**${ratio > TARGET_RATIO ? ' ✗' : ''}`} |`,
      `| wall s (all runs) | ${a.walls?.map((x) => fmt(x)).join(', ') ?? '–'} | ${b.walls?.map((x) => fmt(x)).join(', ') ?? '–'} | |`,
      `| peak RSS MB (max) | ${fmt(a.ok ? mb(a.rssKb) : undefined, 1)} | ${fmt(b.ok ? mb(b.rssKb) : undefined, 1)}${b.ok && mb(b.rssKb) >= TARGET_RSS_MB ? ' ✗' : ''} | ${a.ok && b.ok ? (b.rssKb / a.rssKb).toFixed(1) : '–'} |`,
      `| user CPU s (median) | ${fmt(a.user)} | ${fmt(b.user)} | ${a.ok && b.ok && a.user > 0 ? (b.user / a.user).toFixed(2) : '–'} |`,
      `| sys CPU s (median) | ${fmt(a.sys)} | ${fmt(b.sys)} | ${a.ok && b.ok && a.sys > 0 ? (b.sys / a.sys).toFixed(2) : '–'} |`,
      `| other machine CPU s during run (median) | ${fmt(a.otherCpu)} | ${fmt(b.otherCpu)} | |`,
      `| server backend CPU s (median) | ${fmt(a.serverCpu)} | ${fmt(b.serverCpu)} | ${a.serverCpu > 0 && b.serverCpu !== undefined ? (b.serverCpu / a.serverCpu).toFixed(2) : '–'} |`,
      `| output size, total (${c.args.includes('-Z') ? 'compressed' : 'uncompressed'}) | ${a.ok ? fmtBytes(a.bytes) : '–'} | ${b.ok ? fmtBytes(b.bytes) : '–'} | ${a.ok && b.ok ? (b.bytes / a.bytes).toFixed(3) : '–'} |`,
      ...(a.base !== undefined || b.base !== undefined ? [
        `| base.tar archive | ${fmtBytes(a.base)} | ${fmtBytes(b.base)} | ${a.base && b.base ? (b.base / a.base).toFixed(3) : '–'} |`,
        `| WAL archive | ${a.wal === undefined ? '–' : `${fmtBytes(a.wal)} (${a.walName})`} | ${b.wal === undefined ? '–' : `${fmtBytes(b.wal)} (${b.walName})`} | |`,
      ] : []),
      `| output bytes / files | ${a.ok ? `${a.bytes} / ${a.files}` : '–'} | ${b.ok ? `${b.bytes} / ${b.files}` : '–'} | |`,
      '',
    );
    const compressed = (n) => /\.(gz|lz4|zst)$/.test(n ?? '');
    if (a.walName && b.walName && !compressed(a.walName) && compressed(b.walName)) {
      lines.push(`Note: pg_basebackup wrote its WAL uncompressed (\`${a.walName}\`; PostgreSQL 15 compresses ` +
        `streamed WAL in tar mode only with gzip), pgpitr compressed it (\`${b.walName}\`), so the total sizes and ` +
        'the work done differ; compare the base.tar rows.', '');
    }
    for (const [tool, s] of [['pg_basebackup', a], ['pgpitr', b]]) {
      for (const f of s.failed) {
        lines.push(`${tool} run #${f.rep} failed:`, '', '```', f.error, '```', '');
      }
    }
  }

  if (verdicts.length) {
    lines.push('## Summary', '', '| case | ratio | pgpitr peak RSS MB | target |', '|---|---:|---:|---|');
    for (const v of verdicts) {
      lines.push(`| \`${v.c.label}\` | ${v.ratio === undefined ? '–' : v.ratio.toFixed(2)} | ${fmt(v.rss, 1)} | ${v.verdict === 'ok' ? 'ok' : '**MISS**'} |`);
    }
    lines.push('');
  }

  lines.push(
    '## Raw runs', '',
    '| case | tool | # | ok | wall s | user s | sys s | server CPU s | other CPU s | peak RSS MB | output bytes |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.case} | ${r.tool} | ${r.rep} | ${r.ok ? 'yes' : '**no**'} | ${fmt(r.wall)} | ${fmt(r.user)} | ${fmt(r.sys)} | ` +
      `${fmt(r.serverCpu)} | ${fmt(r.otherCpu)} | ${fmt(mb(r.rssKb), 1)} | ${r.bytes} |`),
    '',
    '"server CPU" is the user+sys time of the server processes that served the backup (walsender / backend ' +
      'processes, read from the postmaster\'s cutime+cstime after they exit); checkpointer work is not included. ' +
      '"other CPU" is the machine\'s busy CPU time during the run (/proc/stat) minus client and server CPU: ' +
      'checkpointer, kernel writeback threads and anything unrelated running at the same time (e.g. a compiler). ' +
      'A run with several seconds of "other CPU" was disturbed; its wall time is unreliable.',
    '',
  );
  // The other scripts' sections (headed "## ... (bench/<script>.mjs)") follow ours: keep them.
  const old = existsSync(opts.out) ? readFileSync(opts.out, 'utf8').split('\n') : [];
  const others = old.findIndex((l) => /^## .*\(bench\/(?!basebackup)[\w-]+\.mjs\)/.test(l));
  writeFileSync(opts.out, [...lines, ...(others >= 0 ? ['', ...old.slice(others)] : [])].join('\n'));
}

main().catch((err) => {
  process.stderr.write(`benchmark failed: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
});
