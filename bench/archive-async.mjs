#!/usr/bin/env node
// Benchmark: sustained WAL archiving (backlog drain rate and rate under a
// write-heavy pgbench) for a cp baseline, pgBackRest (sync and async) and
// pgpitr archive-push (sync and async), plus the replication lag of
// `pgpitr receive-wal` (repository mode) against pg_receivewal, all on one
// PostgreSQL 15 cluster. See bench/README-archive.md.
//
//   node bench/archive-async.mjs [--tools LIST] [--receivers LIST] [--segments 64] [--scale 20]
//        [--load insert|tpcb-n] [--clients 4] [--jobs 2] [--duration 30] [--rate TPS] [--receive-args ARGS]...
//        [--insert-rows 10000] [--process-max 2] [--compress zstd] [--drain-timeout 180] [--max-wal-size 4GB]
//        [--pgpitr MAIN_JS] [--no-snapshot] [--no-precheck] [--out bench/RESULTS.md]      (--help for details)
//
// Needs: dist/ built, PostgreSQL 15 (Debian paths), pgbackrest on PATH (for the pgBackRest
// archivers), root (runs every tool as `postgres`).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import {
  mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync, chownSync, chmodSync, statSync, openSync, readSync, closeSync,
  cpSync, copyFileSync, symlinkSync, mkdtempSync, rmSync,
} from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection } from './results-file.mjs';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const { TestCluster, destroyAll } = await import(join(root, 'dist/test/harness/cluster.js'));
const BUILT_PGPITR = join(root, 'dist/src/cli/main.js');
let PGPITR = BUILT_PGPITR; // replaced by a private copy of dist/ at start (see snapshotDist)
const PGBIN = '/usr/lib/postgresql/15/bin';
const PGBENCH = join(PGBIN, 'pgbench');
const PG_RECEIVEWAL = join(PGBIN, 'pg_receivewal');
const NODE = process.execPath;
const HEADING = '## Sustained archiving (async mode) and receive-wal lag';

// ---------- options ----------
const ALL_TOOLS = ['cp', 'pgbackrest-sync', 'pgbackrest-async', 'pgpitr-sync', 'pgpitr-async'];
const ALL_RECEIVERS = ['pgpitr', 'pg_receivewal'];
const COMPRESS = { zstd: 'zst', lz4: 'lz4', gzip: 'gz', none: 'none' }; // pgpitr name -> pgBackRest name
const USAGE = `usage: node bench/archive-async.mjs [options]
  --tools LIST          archivers, comma-separated, or "all"/"none" (default all: ${ALL_TOOLS.join(',')})
  --receivers LIST      receive-wal lag runs: ${ALL_RECEIVERS.join(',')} (default both), or "none"
  --segments N          backlog size for the drain measurement (default 64)
  --scale N             pgbench -i scale (default 20)
  --load insert|tpcb-n  write load for the backlog and the load runs (default insert): "insert" is a pgbench
                        script inserting --insert-rows pgbench_accounts rows per transaction into a plain
                        table (about 90 MiB/s of WAL here); "tpcb-n" is the built-in pgbench -N (under
                        1 segment/s of WAL at scale 20 here, which every archiver keeps up with)
  --insert-rows N       rows per transaction of the insert load (default 10000, about 1.4 MB of WAL)
  --clients N           pgbench -c (default 4)
  --jobs N              pgbench -j (default 2)
  --duration S          pgbench -T of the load runs (default 30)
  --rate TPS            pgbench -R (default: unthrottled)
  --receive-args ARGS   extra receiver arguments, one run per occurrence (default "--synchronous"; "" for none)
  --drain-runs N        backlog drains per archiver, archivers alternating, summarised by the median (default 3)
  --no-load-runs        measure only the backlog drain of each archiver, not the sustained rate under load
  --receiver-runs N     lag runs per receiver, alternating receivers, pooled in a summary (default 3)
  --process-max N       async process-max for pgBackRest and pgpitr (default 2)
  --compress TYPE       zstd|lz4|gzip|none for pgpitr and pgBackRest (default zstd)
  --drain-timeout S     give up waiting for the archiver after S seconds (default 180)
  --max-wal-size SIZE   server max_wal_size (default 4GB)
  --pgpitr FILE         the pgpitr main.js to benchmark (default: a private copy of dist/src taken at start)
  --no-snapshot         run pgpitr straight from dist/ (a colleague's rebuild then changes it mid-run)
  --no-precheck         do not check that archive-push knows --archive-async before the pgpitr-async case
  --out FILE            file whose "${HEADING}" section is replaced (default bench/RESULTS.md)`;
const argv = process.argv.slice(2);
const opt = {
  tools: [...ALL_TOOLS], receivers: [...ALL_RECEIVERS], segments: 64, scale: 20, clients: 4, jobs: 2, duration: 30,
  rate: 0, load: 'insert', insertRows: 10000, receiveArgs: null, receiverRuns: 3, drainRuns: 3, loadRuns: true, processMax: 2, compress: 'zstd', drainTimeout: 180, maxWalSize: '4GB', precheck: true,
  out: join(here, 'RESULTS.md'), snapshot: true, pgpitr: null,
};
const list = (s, all, what) => {
  if (s === 'all') return [...all];
  if (s === 'none' || s === '') return [];
  const xs = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of xs) if (!all.includes(x)) throw new Error(`unknown ${what} "${x}" (known: ${all.join(', ')})`);
  return all.filter((x) => xs.includes(x)); // canonical order
};
const posInt = (name, v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a positive integer, got "${v}"`);
  return n;
};
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
  if (a === '--tools') opt.tools = list(val(), ALL_TOOLS, 'tool');
  else if (a === '--receivers') opt.receivers = list(val(), ALL_RECEIVERS, 'receiver');
  else if (a === '--segments') opt.segments = posInt(a, val());
  else if (a === '--scale') opt.scale = posInt(a, val());
  else if (a === '--load') { opt.load = val(); if (!['insert', 'tpcb-n'].includes(opt.load)) throw new Error(`--load must be insert or tpcb-n, got "${opt.load}"`); }
  else if (a === '--insert-rows') opt.insertRows = posInt(a, val());
  else if (a === '--clients') opt.clients = posInt(a, val());
  else if (a === '--jobs') opt.jobs = posInt(a, val());
  else if (a === '--duration') opt.duration = posInt(a, val());
  else if (a === '--rate') opt.rate = posInt(a, val());
  else if (a === '--receive-args') (opt.receiveArgs ??= []).push(val());
  else if (a === '--receiver-runs') opt.receiverRuns = posInt(a, val());
  else if (a === '--no-load-runs') opt.loadRuns = false;
  else if (a === '--drain-runs') opt.drainRuns = posInt(a, val());
  else if (a === '--process-max') opt.processMax = posInt(a, val());
  else if (a === '--compress') { opt.compress = val(); if (!COMPRESS[opt.compress]) throw new Error(`unknown compress type ${opt.compress}`); }
  else if (a === '--drain-timeout') opt.drainTimeout = posInt(a, val());
  else if (a === '--max-wal-size') opt.maxWalSize = val();
  else if (a === '--no-precheck') opt.precheck = false;
  else if (a === '--no-snapshot') opt.snapshot = false;
  else if (a === '--pgpitr') opt.pgpitr = resolve(val());
  else if (a === '--out') opt.out = resolve(val());
  else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
  else { console.error(USAGE); throw new Error(`unknown option ${a}`); }
}
opt.receiveArgs ??= ['--synchronous'];
if (opt.segments < 3) throw new Error('--segments must be at least 3');

// ---------- helpers ----------
const pgUid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
const pgGid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/var/lib/postgresql', LANG: 'C' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const log = (m) => console.error(`[archive-async] ${m}`);
const shq = (s) => (/^[A-Za-z0-9_./=:%-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const lit = (s) => `'${s.replace(/'/g, "''")}'`;
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
function mkdirPg(p) { mkdirSync(p, { recursive: true }); chownSync(p, pgUid, pgGid); return p; }
function writePg(p, text) { writeFileSync(p, text); chownSync(p, pgUid, pgGid); return p; }
function findFiles(d, pred, out = []) {
  if (!existsSync(d)) return out;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) findFiles(p, pred, out); else if (pred(e.name, p)) out.push(p);
  }
  return out;
}

/** Runs a command as postgres to completion; throws with its output on failure. */
function runPg(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { uid: pgUid, gid: pgGid, env: { ...baseEnv, ...env }, cwd: '/tmp', encoding: 'utf8', maxBuffer: 1 << 26, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}):\n${r.stdout ?? ''}\n${r.stderr ?? ''}`);
  return r.stdout;
}

// Background processes we started (pgbench, receivers): killed by pid on any exit.
const children = new Set();
process.on('exit', () => {
  // also reached through the harness's SIGINT/SIGTERM handlers (they call process.exit)
  for (const p of children) { try { process.kill(p.child.pid, 'SIGKILL'); } catch { /* gone */ } }
  try {
    for (const m of [workRoot, snapshot]) {
      if (!m) continue;
      for (const f of findStrays(m)) { try { process.kill(f.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    if (snapshot) rmSync(snapshot, { recursive: true, force: true });
  } catch { /* exiting before the state was set up */ }
});
/** Starts a command as postgres in the background; .done resolves with {code, signal, stdout, stderr}. */
function startPg(cmd, args, env = {}) {
  const child = spawn(cmd, args, { uid: pgUid, gid: pgGid, env: { ...baseEnv, ...env }, cwd: '/tmp', stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { child, cmd: [cmd, ...args].join(' '), stdout: '', stderr: '', exited: false, result: null };
  const cap = (k) => (d) => { if (p[k].length < 1 << 20) p[k] += d; };
  child.stdout.on('data', cap('stdout'));
  child.stderr.on('data', cap('stderr'));
  children.add(p);
  p.done = new Promise((res) => {
    child.on('error', (e) => { p.stderr += `\nspawn error: ${e.message}`; });
    child.on('close', (code, signal) => { p.exited = true; children.delete(p); p.result = { code, signal }; res(p.result); });
  });
  return p;
}
/**
 * Calls `sample` every `intervalMs` while pgbench runs; stops pgbench (SIGINT) on the way
 * out, also when `sample` throws, and fails if pgbench did.
 */
async function whilePgbenchRuns(pb, intervalMs, sample) {
  try {
    let next = now();
    while (!pb.exited) {
      await sample();
      next += intervalMs;
      await Promise.race([pb.done, sleep(Math.max(0, next - now()))]);
    }
  } finally {
    await stopPg(pb, 'SIGINT', 5000);
  }
  if (pb.result.code !== 0) throw new Error(`pgbench failed (${pb.result.code}):\n${pb.stderr.slice(-2000)}`);
}

/** Stops a background process by its pid: signal, then SIGKILL after graceMs. */
async function stopPg(p, signal = 'SIGINT', graceMs = 10_000) {
  if (p.exited) return p.result;
  try { p.child.kill(signal); } catch { /* gone */ }
  const t = await Promise.race([p.done, sleep(graceMs).then(() => null)]);
  if (t) return t;
  log(`${p.cmd.split(' ')[0]} (pid ${p.child.pid}) ignored ${signal}; SIGKILL`);
  try { p.child.kill('SIGKILL'); } catch { /* gone */ }
  return p.done;
}

/**
 * Processes started on our behalf by the server's archiver (pgBackRest's async worker, pgpitr's
 * background pusher, a hanging archive_command): found by a unique directory of ours in their
 * command line, ended by pid.
 */
function findStrays(marker) {
  const found = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmdline;
    try { cmdline = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { continue; }
    if (cmdline.includes(marker)) found.push({ pid: Number(d), cmdline: cmdline.trim() });
  }
  return found;
}
async function killStrays(marker) {
  const found = findStrays(marker);
  for (const f of found) { try { process.kill(f.pid, 'SIGTERM'); } catch { /* gone */ } }
  if (found.length) {
    log(`ended ${found.length} leftover process(es): ${found.map((f) => `${f.pid} ${f.cmdline.slice(0, 100)}`).join('; ')}`);
    await sleep(1000);
    for (const f of found) { try { process.kill(f.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  return found.length;
}

/**
 * Copies dist/src (with package.json for "type": "module" and a node_modules link) into a temp dir
 * readable by postgres, so that a rebuild of dist/ during the run cannot change the code measured.
 */
/** Temp paths in the report: $W = scratch dir, $C = the cluster's temp dir, $COPY = private copy of the project (dist/). */
function disp(text) {
  let t = String(text);
  if (workRoot) t = t.replaceAll(workRoot, '$W');
  if (cluster) t = t.replaceAll(cluster.baseDir, '$C');
  if (snapshot) t = t.replaceAll(snapshot, '$COPY');
  return t;
}
function snapshotDist() {
  const dir = mkdtempSync(join(os.tmpdir(), 'pgpitr-aabench-dist-'));
  chmodSync(dir, 0o755);
  cpSync(join(root, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

// ---------- state ----------
const started = new Date();
const info = { loadStart: os.loadavg().map(f2).join(' ') };
const drains = []; // {tool, ok, error, backlog, seconds, genSeconds, stored}
const loads = []; // {tool, ok, error, ...}
const lags = []; // {receiver, args, ok, error, ...}
const commands = {}; // tool -> archive_command (display form)
const receiverCommands = {};
const notes = [];
let cluster = null;
let mon = null;
let workRoot = null;
let SEG = 16 * 2 ** 20;
let fatal = null;
let snapshot = null;

// ---------- server access ----------
async function q(sql, params) { return (await mon.query(sql, params)).rows; }
async function archiver() {
  const r = (await q('select archived_count::int8 as a, failed_count::int8 as f, last_archived_wal as law, last_failed_wal as lfw from pg_stat_archiver'))[0];
  return { archived: Number(r.a), failed: Number(r.f), lastArchived: r.law, lastFailed: r.lfw };
}
async function lsnBytes() { return Number((await q("select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 as b"))[0].b); }
function statusDir() { return join(cluster.dataDir, 'pg_wal', 'archive_status'); }
function readyFiles() { return readdirSync(statusDir()).filter((n) => n.endsWith('.ready')).map((n) => n.slice(0, -6)).sort(); }
async function setArchiveCommand(cmd) {
  await q(`alter system set archive_command = ${lit(cmd)}`);
  await q('select pg_reload_conf()');
  await sleep(300); // the archiver applies it at its next file or wake-up
}
async function checkpoint() { await q('checkpoint'); execFileSync('sync'); }
function logOffset() { try { return statSync(cluster.logPath).size; } catch { return 0; } }
function logSince(offset, maxLines = 25) {
  try {
    const size = statSync(cluster.logPath).size;
    const fd = openSync(cluster.logPath, 'r');
    const buf = Buffer.alloc(Math.max(0, size - offset));
    readSync(fd, buf, 0, buf.length, offset);
    closeSync(fd);
    const lines = buf.toString('utf8').split('\n').filter((l) => l.trim() && !/archive_mode enabled, yet archiving is not configured|archive_command is not set/.test(l));
    return lines.slice(-maxLines).join('\n');
  } catch { return ''; }
}
async function archiveFailure(what, base, st, off) {
  const text = logSince(off, 40);
  // lines without a log-line prefix are the archive command's own stderr
  const toolSaid = text.split('\n').filter((l) => !/^\d{4}-\d\d-\d\d /.test(l) && !/^\s/.test(l)).slice(-2).join(' / ');
  return new Error(`${what}: archive_command failed${toolSaid ? `: ${toolSaid}` : ''} (pg_stat_archiver.failed_count ${base.failed} -> ${st.failed},` +
    ` last_failed_wal ${st.lastFailed}); server log since the case started:\n${text}`);
}

/** Waits until nothing is .ready and `need` more files were archived since `base`; throws on failure/timeout. */
async function waitDrained(what, base, need, off, t0, timeoutS, onSample) {
  for (;;) {
    const st = await archiver();
    const ready = readyFiles().length;
    onSample?.(ready, st);
    if (st.failed > base.failed) throw await archiveFailure(what, base, st, off);
    if (st.archived - base.archived >= need && ready === 0) return { t: now(), st };
    if (now() - t0 > timeoutS * 1000) {
      throw new Error(`${what}: not drained after ${timeoutS} s (${ready} .ready left, archived ${st.archived - base.archived} of ${need}); server log:\n${logSince(off)}`);
    }
    await sleep(50);
  }
}

/** Empties the archive queue with archive_command=true (WAL from pgbench -i or a failed case), then pauses archiving. */
async function resetQueue() {
  if (readyFiles().length > 0) {
    await setArchiveCommand('true');
    const t0 = now();
    while (readyFiles().length > 0) {
      if (now() - t0 > 120_000) throw new Error('could not empty the archive queue with archive_command=true');
      await sleep(100);
    }
  }
  await setArchiveCommand('');
}

let loadScript = null; // the insert load's pgbench script (written once the work dir exists)
function pgbenchArgs(seconds, shown = false) {
  const what = opt.load === 'insert' ? ['-f', shown ? 'insert.sql' : loadScript] : ['-N'];
  return ['-n', ...what, '-c', String(opt.clients), '-j', String(opt.jobs), '-T', String(seconds), ...(opt.rate ? ['-R', String(opt.rate)] : [])];
}
function insertScriptText() {
  const n = opt.scale * 100000;
  const rows = Math.min(opt.insertRows, n);
  return `\\set a random(1, ${n - rows + 1})\ninsert into bench_fill select * from pgbench_accounts where aid between :a and :a + ${rows - 1};\n`;
}
/** Empties the insert load's table (its files go at once) and checkpoints, so every phase starts alike. */
async function freshStart() {
  if (opt.load === 'insert') await q('truncate bench_fill');
  await checkpoint();
}
const cenvOf = () => cluster.connectionEnv();
const tpsOf = (out) => Number((/tps = ([\d.]+) \(without initial connection time\)/.exec(out) ?? [])[1]);

/** pgbench -N until `n` segments are ready (the last one completed by pg_switch_wal()), archiving paused. */
async function generateBacklog(n) {
  const t0 = now();
  const startSeg = Math.floor((await lsnBytes()) / SEG);
  const pb = startPg(PGBENCH, pgbenchArgs(600), cenvOf());
  try {
    for (;;) {
      if (pb.exited) throw new Error(`pgbench ended early while generating the backlog (${pb.result.code}):\n${pb.stderr.slice(-2000)}`);
      if (Math.floor((await lsnBytes()) / SEG) - startSeg >= n - 1) break;
      if (now() - t0 > 600_000) throw new Error('backlog generation took more than 10 minutes');
      await sleep(100);
    }
  } finally {
    await stopPg(pb, 'SIGINT', 5000);
  }
  await q('select pg_switch_wal()');
  await sleep(200);
  const ready = readyFiles();
  return { count: ready.length, first: ready[0], last: ready.at(-1), seconds: (now() - t0) / 1000 };
}

// ---------- archivers ----------
/** Sets up one archiver's fresh repository/spool; returns its archive_command and how to count what it stored. */
function prepareTool(tool, dir) {
  const cenv = cenvOf();
  const comp = opt.compress;
  const wave = disp;
  if (tool === 'cp') {
    const d = mkdirPg(join(dir, 'archive'));
    const cmd = `test ! -f ${shq(d)}/%f && cp %p ${shq(d)}/%f.tmp && sync ${shq(d)}/%f.tmp && mv ${shq(d)}/%f.tmp ${shq(d)}/%f`;
    return { cmd, shown: wave(cmd), stored: () => findFiles(d, (n) => /^[0-9A-F]{24}$/.test(n)).length };
  }
  if (tool.startsWith('pgbackrest')) {
    const async = tool === 'pgbackrest-async';
    const repo = mkdirPg(join(dir, 'repo'));
    const misc = mkdirPg(join(dir, 'misc'));
    const spool = mkdirPg(join(dir, 'spool'));
    const conf = writePg(join(dir, 'pgbackrest.conf'), [
      '[global]', `repo1-path=${repo}`, `compress-type=${COMPRESS[comp]}`,
      'log-level-console=warn', 'log-level-stderr=warn', 'log-level-file=warn',
      `log-path=${misc}`, `lock-path=${misc}`, `spool-path=${spool}`,
      `archive-async=${async ? 'y' : 'n'}`, ...(async ? [`process-max=${opt.processMax}`] : []), '',
      '[bench]', `pg1-path=${cluster.dataDir}`, `pg1-socket-path=${cenv.PGHOST}`, `pg1-port=${cenv.PGPORT}`, 'pg1-user=postgres', '',
    ].join('\n'));
    runPg('pgbackrest', [`--config=${conf}`, '--stanza=bench', 'stanza-create'], cenv);
    const cmd = `${info.pgbackrestPath} --config=${shq(conf)} --stanza=bench archive-push %p`;
    const confShown = readFileSync(conf, 'utf8').replace(/\n+$/, '').split('\n').filter((l) => l && !l.startsWith('[')).join(', ');
    return {
      cmd, shown: wave(cmd), config: wave(confShown),
      stored: () => findFiles(join(repo, 'archive'), (n) => /^[0-9A-F]{24}-[0-9a-f]{40}/.test(n)).length,
    };
  }
  // pgpitr
  const repo = mkdirPg(join(dir, 'repo'));
  runPg(NODE, [PGPITR, 'stanza-create', '--repo', repo, '--stanza', 'bench', '--compress-type', comp], cenv);
  const base = `${shq(NODE)} ${shq(PGPITR)} archive-push`;
  const common = `--repo ${shq(repo)} --stanza bench --compress-type ${comp}`;
  let cmd;
  if (tool === 'pgpitr-sync') cmd = `${base} ${common} %p`;
  else {
    const spool = mkdirPg(join(dir, 'spool'));
    cmd = `${shq(join(root, 'bin', 'pgpitr-spool-wait'))} ${shq(spool)}/bench/archive-push %f || ${base} --archive-async --spool-path ${shq(spool)} --process-max ${opt.processMax} ${common} %p`;
  }
  return { cmd, shown: wave(cmd), stored: () => findFiles(repo, (n) => /^[0-9A-F]{24}(\.|-|$)/.test(n) && !n.includes('.partial')).length };
}

/** Refuses the pgpitr-async case early when dist/ has no asynchronous archive-push. */
function precheckAsync() {
  const r = spawnSync(NODE, [PGPITR, 'archive-push', '--help'], { encoding: 'utf8' });
  const text = `${r.stdout}${r.stderr}`;
  if (!text.includes('--archive-async') || !text.includes('--spool-path')) {
    throw new Error(`pgpitr archive-push (${PGPITR}) does not know --archive-async/--spool-path (asynchronous mode not built yet); ` +
      'build dist/ with it, or leave pgpitr-async out of --tools (--no-precheck runs it anyway, and then it fails on the first archive_command)');
  }
}

async function runTool(tool, rep, withLoad) {
  const dir = mkdirPg(join(workRoot, rep === 0 ? tool : `${tool}-${rep + 1}`));
  const d = { tool, rep, ok: false };
  const l = { tool, ok: false };
  drains.push(d);
  if (withLoad) loads.push(l);
  const off = logOffset();
  try {
    if (tool === 'pgpitr-async' && opt.precheck) precheckAsync();
    if (tool.startsWith('pgbackrest') && !info.pgbackrestPath) throw new Error('pgbackrest is not on PATH (apt-get install -y pgbackrest)');
    await resetQueue();
    const t = prepareTool(tool, dir);
    commands[tool] = { shown: t.shown, config: t.config };

    // 1. backlog drain
    await freshStart();
    const bl = await generateBacklog(opt.segments);
    execFileSync('sync');
    log(`${tool}: backlog of ${bl.count} segments (${bl.first}..${bl.last}) generated in ${f1(bl.seconds)} s; draining`);
    Object.assign(d, { backlog: bl.count, genSeconds: bl.seconds, first: bl.first, last: bl.last });
    const base = await archiver();
    const c0 = machineBusySeconds();
    const t0 = now();
    await setArchiveCommand(t.cmd);
    const done = await waitDrained(`${tool} backlog drain`, base, bl.count, off, t0, opt.drainTimeout);
    d.seconds = (done.t - t0) / 1000;
    d.cpu = machineBusySeconds() - c0;
    d.lastArchived = done.st.lastArchived;
    d.segPerSec = bl.count / d.seconds;
    d.mibPerSec = (bl.count * SEG) / 2 ** 20 / d.seconds;
    d.ok = true;
    log(`${tool}: drained ${bl.count} segments in ${f2(d.seconds)} s = ${f1(d.segPerSec)} segments/s; machine CPU ${f2(d.cpu)} s (${f1((d.cpu * 1000) / bl.count)} ms per segment)`);

    // 2. sustained rate under load
    if (!withLoad) return;
    await freshStart();
    const a0 = await archiver();
    const l0 = await lsnBytes();
    const r0 = now();
    const pb = startPg(PGBENCH, pgbenchArgs(opt.duration), cenvOf());
    let maxReady = readyFiles().length;
    const series = [];
    await whilePgbenchRuns(pb, 1000, async () => {
      const st = await archiver();
      const ready = readyFiles().length;
      maxReady = Math.max(maxReady, ready);
      series.push({ t: (now() - r0) / 1000, ready, archived: st.archived - a0.archived });
      if (st.failed > a0.failed) throw await archiveFailure(`${tool} under load`, a0, st, off);
    });
    const r1 = now();
    const a1 = await archiver();
    const l1 = await lsnBytes();
    let lastSample = r1;
    const drained = await waitDrained(`${tool} drain after load`, a1, 0, off, r1, opt.drainTimeout, (ready, st) => {
      maxReady = Math.max(maxReady, ready);
      if (now() - lastSample >= 1000) { lastSample = now(); series.push({ t: (now() - r0) / 1000, ready, archived: st.archived - a0.archived }); }
    });
    const runS = (r1 - r0) / 1000;
    Object.assign(l, {
      ok: true, runSeconds: runS, tps: tpsOf(pb.stdout),
      walSegs: (l1 - l0) / SEG, walSegPerSec: (l1 - l0) / SEG / runS,
      archivedRun: a1.archived - a0.archived, segPerSec: (a1.archived - a0.archived) / runS,
      maxReady, drainSeconds: (drained.t - r1) / 1000,
      archivedTotal: drained.st.archived - a0.archived,
      overallSegPerSec: (drained.st.archived - a0.archived) / ((drained.t - r0) / 1000),
      series,
    });
    l.mibPerSec = (l.segPerSec * SEG) / 2 ** 20;
    d.stored = l.stored = t.stored();
    const expected = d.backlog + l.archivedTotal;
    if (l.stored < expected) notes.push(`${tool}: the repository holds ${l.stored} segment files, fewer than the ${expected} PostgreSQL counted as archived`);
    log(`${tool}: under load ${f1(l.segPerSec)} segments/s archived (WAL ${f1(l.walSegPerSec)} segments/s, ${f1(l.tps)} tps), max backlog ${maxReady}, drained ${f2(l.drainSeconds)} s after pgbench`);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e));
    if (!d.ok) d.error = msg; else l.error = msg;
    if (!d.ok) l.error = 'not run (drain failed)';
    log(`${tool}: FAILED: ${msg}`);
  } finally {
    if (cluster) {
      await setArchiveCommand('').catch(() => undefined);
      await killStrays(dir);
    }
  }
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat). */
function machineBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK;
}

// ---------- receive-wal lag ----------
/** user+sys CPU seconds of a process (all its threads) so far, from /proc. */
function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
  } catch {
    return NaN;
  }
}
async function runReceiver(receiver, extra) {
  const tag = `${receiver}${extra ? ' ' + extra : ''}`;
  const r = { receiver, args: extra, ok: false };
  lags.push(r);
  const dir = mkdirPg(join(workRoot, `recv-${receiver}-${lags.length}`));
  const cenv = cenvOf();
  const app = `bench_recv_${lags.length}`;
  const conn = ['-h', cenv.PGHOST, '-p', cenv.PGPORT, '-U', 'postgres', '-n'];
  const extraArgs = extra ? extra.split(/\s+/).filter(Boolean) : [];
  let p = null;
  let countStored;
  try {
    await setArchiveCommand('');
    let cmd;
    if (receiver === 'pgpitr') {
      const repo = mkdirPg(join(dir, 'repo'));
      runPg(NODE, [PGPITR, 'stanza-create', '--repo', repo, '--stanza', 'bench', '--compress-type', opt.compress], cenv);
      // BENCH_NODE_ARGS: extra node flags for the receiver (e.g. --cpu-prof --cpu-prof-dir=DIR), for profiling
      cmd = [NODE, ...(process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean), PGPITR, 'receive-wal', '--repo', repo, '--stanza', 'bench', '--compress-type', opt.compress, ...conn, ...extraArgs];
      countStored = () => findFiles(repo, (n) => /^[0-9A-F]{24}(\.|-|$)/.test(n) && !n.includes('.partial')).length;
    } else {
      const d = mkdirPg(join(dir, 'wal'));
      cmd = [PG_RECEIVEWAL, '-D', d, ...conn, ...extraArgs];
      countStored = () => findFiles(d, (n) => /^[0-9A-F]{24}$/.test(n)).length;
    }
    receiverCommands[tag] = disp(`PGAPPNAME=${app} ${cmd.map(shq).join(' ')}`);
    await freshStart();
    // BENCH_RECEIVER_ENV: extra NAME=VALUE settings (space-separated) for the receiver's environment, for experiments
    const extraEnv = Object.fromEntries((process.env.BENCH_RECEIVER_ENV ?? '').split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    p = startPg(cmd[0], cmd.slice(1), { PGAPPNAME: app, ...extraEnv });
    const tw = now();
    for (;;) {
      if (p.exited) throw new Error(`${receiver} exited before streaming (${p.result.code ?? p.result.signal}):\n${p.stderr.slice(-2000)}`);
      const rows = await q('select state from pg_stat_replication where application_name = $1', [app]);
      if (rows[0]?.state === 'streaming') break;
      if (now() - tw > 30_000) throw new Error(`${receiver} not streaming after 30 s:\n${p.stderr.slice(-2000)}`);
      await sleep(100);
    }
    await sleep(1000);
    log(`${tag}: streaming; pgbench ${pgbenchArgs(opt.duration, true).join(' ')}, sampling lag every 100 ms`);
    const lagSql = `select pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::int8 as w, pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::int8 as f,
                           pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::int8 as s,
                           pg_wal_lsn_diff(pg_current_wal_flush_lsn(), flush_lsn)::int8 as fr
                    from pg_stat_replication where application_name = $1`;
    const w = [];
    const f = [];
    const sent = []; // not yet sent by the walsender: the server's part of the lag
    const fromFlush = []; // behind what the server has flushed (all it may send): the receiver's part
    const seriesR = [];
    const series = []; // flush lag, one sample per second
    let lastPoint = 0;
    const l0 = await lsnBytes();
    const cpu0 = procCpuSeconds(p.child.pid);
    const t0 = now();
    const pb = startPg(PGBENCH, pgbenchArgs(opt.duration), cenvOf());
    await whilePgbenchRuns(pb, 100, async () => {
      const row = (await q(lagSql, [app]))[0];
      if (!row) throw new Error(`${receiver} disconnected during the run:\n${p.stderr.slice(-2000)}`);
      if (row.w !== null) w.push(Number(row.w));
      if (row.f !== null) f.push(Number(row.f));
      if (row.s !== null) sent.push(Number(row.s));
      if (row.fr !== null) fromFlush.push(Number(row.fr));
      if (row.f !== null && (series.length === 0 || now() - lastPoint >= 1000)) { series.push(Number(row.f)); seriesR.push(Number(row.fr)); lastPoint = now(); }
    });
    const t1 = now();
    const cpu1 = procCpuSeconds(p.child.pid);
    const endLsn = await lsnBytes();
    // catch-up: until the receiver reports flush (and write) at the LSN pgbench ended at
    let catchUp = NaN;
    let writeCatchUp = NaN;
    const posSql = `select pg_wal_lsn_diff(write_lsn, '0/0')::int8 as w, pg_wal_lsn_diff(flush_lsn, '0/0')::int8 as f
                    from pg_stat_replication where application_name = $1`;
    while (now() - t1 < 60_000) {
      const row = (await q(posSql, [app]))[0];
      if (!row) break;
      if (Number.isNaN(writeCatchUp) && Number(row.w) >= endLsn) writeCatchUp = (now() - t1) / 1000;
      if (Number(row.f) >= endLsn) { catchUp = (now() - t1) / 1000; break; }
      await sleep(50);
    }
    Object.assign(r, {
      ok: true, samples: f.length, runSeconds: (t1 - t0) / 1000, tps: tpsOf(pb.stdout),
      walSegPerSec: (endLsn - l0) / SEG / ((t1 - t0) / 1000),
      // an empty list: the receiver never reported that position (pg_receivewal without --synchronous or a slot reports no flush)
      wMax: w.length ? Math.max(...w) : NaN, wP95: w.length ? pct(w, 0.95) : NaN, wP50: w.length ? pct(w, 0.5) : NaN,
      fMax: f.length ? Math.max(...f) : NaN, fP95: f.length ? pct(f, 0.95) : NaN, fP50: f.length ? pct(f, 0.5) : NaN,
      sP95: sent.length ? pct(sent, 0.95) : NaN, sP50: sent.length ? pct(sent, 0.5) : NaN,
      rMax: fromFlush.length ? Math.max(...fromFlush) : NaN, rP95: fromFlush.length ? pct(fromFlush, 0.95) : NaN, rP50: fromFlush.length ? pct(fromFlush, 0.5) : NaN,
      catchUp, writeCatchUp, series, seriesR, cpu: cpu1 - cpu0, fromFlush, flushLag: f,
    });
    log(`${tag}: flush lag max ${f1(r.fMax / 2 ** 20)} MiB p95 ${f1(r.fP95 / 2 ** 20)} MiB median ${f1(r.fP50 / 2 ** 20)} MiB; write lag max ${f1(r.wMax / 2 ** 20)} MiB p95 ${f1(r.wP95 / 2 ** 20)} MiB; behind the server's flush p95 ${f1(r.rP95 / 2 ** 20)} MiB median ${f1(r.rP50 / 2 ** 20)} MiB max ${f1(r.rMax / 2 ** 20)} MiB; not yet sent p95 ${f1(r.sP95 / 2 ** 20)} MiB median ${f1(r.sP50 / 2 ** 20)} MiB (${r.samples} flush samples); receiver CPU ${f2(r.cpu)} s`);
  } catch (e) {
    r.error = e instanceof Error ? e.message : String(e);
    log(`${tag}: FAILED: ${r.error}`);
  } finally {
    if (p) {
      const res = await stopPg(p, 'SIGINT', 10_000);
      if (r.ok && res.code !== 0 && res.signal !== 'SIGINT') notes.push(`${tag}: receiver exited with ${res.code ?? res.signal} when stopped: ${p.stderr.trim().split('\n').slice(-3).join(' / ')}`);
      try { r.stored = countStored(); } catch { /* dir gone */ }
    }
    await killStrays(dir);
  }
}

// ---------- run ----------
try {
  if (process.getuid?.() !== 0) throw new Error('run as root (tools are started as the postgres user)');
  if (!existsSync(BUILT_PGPITR)) throw new Error(`${BUILT_PGPITR} missing: build dist/ first`);
  info.build = {
    commit: spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || 'unknown',
    dirty: (spawnSync('git', ['-C', root, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter(Boolean).length,
    builtAt: statSync(BUILT_PGPITR).mtime.toISOString(),
  };
  if (opt.pgpitr) PGPITR = opt.pgpitr;
  else if (opt.snapshot) { snapshot = snapshotDist(); PGPITR = join(snapshot, 'dist', 'src', 'cli', 'main.js'); }
  if (!existsSync(PGPITR)) throw new Error(`${PGPITR} missing`);
  log(`pgpitr under test: ${PGPITR}`);
  const which = spawnSync('sh', ['-c', 'command -v pgbackrest'], { encoding: 'utf8' });
  info.pgbackrestPath = which.status === 0 ? which.stdout.trim() : '';
  info.pgbackrest = info.pgbackrestPath ? spawnSync('pgbackrest', ['version'], { encoding: 'utf8' }).stdout.trim() : '(pgbackrest not installed)';
  info.pgpitr = spawnSync(NODE, [PGPITR, '--version'], { encoding: 'utf8' }).stdout.trim().split('\n')[0] || '(unknown)';
  info.pgbench = spawnSync(PGBENCH, ['--version'], { encoding: 'utf8' }).stdout.trim();
  info.pgreceivewal = spawnSync(PG_RECEIVEWAL, ['--version'], { encoding: 'utf8' }).stdout.trim();

  log(`creating cluster, pgbench -i -s ${opt.scale}`);
  cluster = await TestCluster.create({
    version: 15, name: 'aabench',
    conf: {
      archive_mode: 'on', archive_command: '', max_wal_size: opt.maxWalSize, min_wal_size: '1GB',
      checkpoint_timeout: '1h', wal_keep_size: '0',
    },
  });
  mon = await cluster.connect();
  info.server = (await q('select version() as v'))[0].v;
  const segSize = (await q("select setting::int8 as s from pg_settings where name = 'wal_segment_size'"))[0].s;
  SEG = Number(segSize);
  workRoot = cluster.tempDir('w');
  runPg(PGBENCH, ['-i', '-s', String(opt.scale), '-q'], cenvOf());
  await q('create table bench_fill (like pgbench_accounts) with (autovacuum_enabled = off)');
  loadScript = writePg(join(workRoot, 'insert.sql'), insertScriptText());
  await checkpoint();

  // Drains repeat, tools alternating; the load runs go with the first repetition.
  for (let i = 0; i < opt.drainRuns; i++) {
    const order = i % 2 === 0 ? opt.tools : [...opt.tools].reverse();
    for (const tool of order) await runTool(tool, i, i === 0 && opt.loadRuns);
  }
  if (opt.receivers.length) {
    await resetQueue();
    for (const extra of opt.receiveArgs) {
      for (let i = 0; i < opt.receiverRuns; i++) {
        // alternate who goes first, so that neither always runs on a warmer (or more tired) machine
        const order = i % 2 === 0 ? opt.receivers : [...opt.receivers].reverse();
        for (const rcv of order) await runReceiver(rcv, extra);
      }
    }
  }
} catch (e) {
  fatal = e;
} finally {
  for (const p of [...children]) await stopPg(p, 'SIGINT', 5000).catch(() => undefined);
  if (mon) await mon.end().catch(() => undefined);
  await destroyAll();
  if (workRoot) await killStrays(workRoot);
  if (snapshot) { await killStrays(snapshot); rmSync(snapshot, { recursive: true, force: true }); }
}
if (fatal) {
  console.error(fatal);
  process.exit(1);
}
info.loadEnd = os.loadavg().map(f2).join(' ');

// ---------- report ----------
const cpus = os.cpus();
const machine = `${cpus.length} CPUs (${cpus[0]?.model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`;
const mib = (b) => (Number.isFinite(b) ? (b / 2 ** 20).toFixed(1) : '–');
const segFrac = (b) => (Number.isFinite(b) ? (b / SEG).toFixed(2) : '–');
const mibU = (b) => (Number.isFinite(b) ? `${mib(b)} MiB` : '–');
const lagCell = (b) => (Number.isFinite(b) ? `${mib(b)} MiB (${b} B)` : 'not reported');
const ref = (rows, key) => rows.find((r) => r.tool === 'pgbackrest-async' && r.ok)?.[key];
const ratio = (x, base) => (Number.isFinite(x) && Number.isFinite(base) && base > 0 ? `**${f2(x / base)}**` : '–');
const failCell = (r) => `FAILED: ${disp(r.error ?? '').split('\n')[0].slice(0, 300).replace(/\|/g, '\\|')}`;
const argsText = [
  opt.tools.length !== ALL_TOOLS.length ? `--tools ${opt.tools.join(',') || 'none'}` : '',
  opt.receivers.length !== ALL_RECEIVERS.length ? `--receivers ${opt.receivers.join(',') || 'none'}` : '',
  opt.segments !== 64 ? `--segments ${opt.segments}` : '', opt.scale !== 20 ? `--scale ${opt.scale}` : '',
  opt.load !== 'insert' ? `--load ${opt.load}` : '', opt.insertRows !== 10000 ? `--insert-rows ${opt.insertRows}` : '',
  opt.clients !== 4 ? `--clients ${opt.clients}` : '', opt.jobs !== 2 ? `--jobs ${opt.jobs}` : '',
  opt.duration !== 30 ? `--duration ${opt.duration}` : '', opt.rate ? `--rate ${opt.rate}` : '',
  ...(opt.receiveArgs.length === 1 && opt.receiveArgs[0] === '--synchronous' ? [] : opt.receiveArgs.map((a) => `--receive-args ${shq(a)}`)),
  opt.receiverRuns !== 3 ? `--receiver-runs ${opt.receiverRuns}` : '', opt.loadRuns ? '' : '--no-load-runs', opt.drainRuns !== 3 ? `--drain-runs ${opt.drainRuns}` : '',
  opt.processMax !== 2 ? `--process-max ${opt.processMax}` : '', opt.compress !== 'zstd' ? `--compress ${opt.compress}` : '',
  opt.drainTimeout !== 180 ? `--drain-timeout ${opt.drainTimeout}` : '', opt.maxWalSize !== '4GB' ? `--max-wal-size ${opt.maxWalSize}` : '',
  opt.precheck ? '' : '--no-precheck',
].filter(Boolean).join(' ');
const loadCmd = `pgbench ${pgbenchArgs(opt.duration, true).join(' ')}`;
const loadDesc = opt.load === 'insert'
  ? `\`${loadCmd}\` where insert.sql is \`${insertScriptText().trim().replace(/\n/g, ' ')}\` (bench_fill: \`create table bench_fill (like pgbench_accounts) with (autovacuum_enabled = off)\`, truncated before every phase)`
  : `\`${loadCmd}\``;

const L = [];
L.push(HEADING, '');
L.push(`Generated by \`node bench/archive-async.mjs${argsText ? ' ' + argsText : ''}\` (see bench/README-archive.md).`, '');
L.push(`- Date: ${started.toISOString()}`);
L.push(`- Machine: ${machine}; load average at start ${info.loadStart}, at end ${info.loadEnd} (other work shares this machine: absolute numbers are noisy)`);
L.push(`- Node: ${process.version}; ${info.pgbackrest}; ${info.pgpitr}; ${info.pgbench}; ${info.pgreceivewal}`);
L.push(`- pgpitr build: dist/ compiled ${info.build?.builtAt} from commit ${info.build?.commit}${info.build?.dirty ? ` plus ${info.build.dirty} uncommitted change(s) under src/` : ''}; ${opt.pgpitr ? `run from ${opt.pgpitr}` : snapshot ? 'run from a private copy of dist/ taken at start' : 'run straight from dist/'}`);
L.push(`- Server: ${info.server}`);
L.push(`- Cluster: harness defaults (fsync=off, shared_buffers=32MB, wal_level=replica) plus archive_mode=on, max_wal_size=${opt.maxWalSize}, min_wal_size=1GB, checkpoint_timeout=1h; \`pgbench -i -s ${opt.scale}\` in database postgres; wal_segment_size ${mib(SEG)} MiB. A CHECKPOINT (and \`sync\`) precedes every measured phase, so each starts with the same full-page-write state.`);
L.push(`- Compression: ${opt.compress} for pgpitr and pgBackRest (default levels), none for cp; pgBackRest/pgpitr async with process-max=${opt.processMax}; every archiver gets a fresh repository/spool.`);
L.push('');

L.push('### 1. Backlog drain rate', '');
L.push(`Archiving paused (\`archive_command = ''\`: PostgreSQL keeps the .ready files), a backlog of ${opt.segments} segments written by the load below (\`pgbench ${pgbenchArgs(600, true).join(' ')}\`, stopped by SIGINT once the WAL has advanced ${opt.segments - 1} segments; the last segment is then completed by \`pg_switch_wal()\`, the first was partly written before, so all but two are 16 MiB of load WAL), then the archiver's command is set and \`pg_reload_conf()\` called; time from the reload until pg_stat_archiver.archived_count has grown by the backlog and no .ready file is left (polled every 50 ms). MiB/s counts the 16 MiB segment files.`, '');
const median = (xs) => { const a = [...xs].sort((x, y) => x - y); return a.length ? (a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2) : NaN; };
const drainSummary = opt.tools.map((tool) => {
  const runs = drains.filter((d) => d.ok && d.tool === tool);
  return { tool, runs: runs.length, failed: drains.filter((d) => !d.ok && d.tool === tool).length,
    segPerSec: median(runs.map((d) => d.segPerSec)), all: runs.map((d) => d.segPerSec), cpuPerSeg: median(runs.map((d) => (d.cpu * 1000) / d.backlog)) };
});
const refDrain = drainSummary.find((x) => x.tool === 'pgbackrest-async')?.segPerSec;
L.push(`Median over ${opt.drainRuns} drain(s) per archiver (archivers alternating order every repetition):`, '');
L.push('| tool | runs | segments/s (median) | segments/s (each run) | machine CPU ms per segment (median) | segments/s vs pgBackRest async (medians) |');
L.push('|---|---:|---:|---|---:|---:|');
for (const x of drainSummary) {
  if (!x.runs) { L.push(`| ${x.tool} | 0 | FAILED | | | |`); continue; }
  L.push(`| ${x.tool} | ${x.runs}${x.failed ? ` (+${x.failed} failed)` : ''} | ${f1(x.segPerSec)} | ${x.all.map(f1).join(', ')} | ${f1(x.cpuPerSeg)} | ${ratio(x.segPerSec, refDrain)} |`);
}
L.push('', 'Each drain:', '');
L.push('| tool | run | backlog segments | drain s | segments/s | MiB/s | machine CPU s during the drain | CPU ms per segment |');
L.push('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const d of drains) {
  if (!d.ok) { L.push(`| ${d.tool} | ${d.rep + 1} | ${d.backlog ?? ''} | ${failCell(d)} | | | | |`); continue; }
  L.push(`| ${d.tool} | ${d.rep + 1} | ${d.backlog} | ${f2(d.seconds)} | ${f1(d.segPerSec)} | ${f1(d.mibPerSec)} | ${f2(d.cpu)} | ${f1((d.cpu * 1000) / d.backlog)} |`);
}
L.push('');

L.push('### 2. Sustained rate under load', '');
L.push(`With the archiver's command in place, ${loadDesc}; pg_wal/archive_status/*.ready and pg_stat_archiver sampled every second. "segments/s archived" = archived_count growth during the pgbench run / run time; "WAL segments/s" = WAL written during the run (pg_current_wal_lsn) / run time; "max backlog" = most .ready files seen (during the run or the drain after it); "drain after" = time from pgbench's end until no .ready file is left; "run+drain segments/s" = all segments archived from pgbench's start to the end of the drain / that time. pgbench competes with the archiver for the CPUs, so tps and WAL rate differ per archiver.`, '');
L.push('| tool | segments/s archived | MiB/s | vs pgBackRest async | WAL segments/s | pgbench tps | max backlog (.ready) | drain after s | run+drain segments/s | segment files stored |');
L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const l of loads) {
  if (!l.ok) { L.push(`| ${l.tool} | ${failCell(l)} | | | | | | | | |`); continue; }
  L.push(`| ${l.tool} | ${f1(l.segPerSec)} | ${f1(l.mibPerSec)} | ${ratio(l.segPerSec, ref(loads, 'segPerSec'))} | ${f1(l.walSegPerSec)} | ${f1(l.tps)} | ${l.maxReady} | ${f2(l.drainSeconds)} | ${f1(l.overallSegPerSec)} | ${l.stored} |`);
}
L.push('');
if (loads.some((l) => l.ok)) {
  L.push('Backlog (.ready files) per second, during the run and the drain after it:', '');
  L.push('| tool | .ready count, one sample per second |', '|---|---|');
  for (const l of loads) if (l.ok) L.push(`| ${l.tool} | ${l.series.map((s) => s.ready).join(' ')} |`);
  L.push('');
}

L.push('### 3. receive-wal lag', '');
L.push(`Archiving paused (\`archive_command = ''\`); one receiver at a time streams (no replication slot, started on an empty target, \`-n\`), identified in pg_stat_replication by PGAPPNAME; once it is streaming, the same load (\`${loadCmd}\`) runs and pg_stat_replication is sampled every 100 ms. "Behind server flush" is \`pg_wal_lsn_diff(pg_current_wal_flush_lsn(), flush_lsn)\`: how far the receiver's durable position is behind everything the server could have sent it (a walsender sends only WAL the server has flushed), the receiver's own lag and the one the target is about. "Flush lag" is \`pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)\`: it adds WAL the backends have written but the server not yet flushed (this load's transactions are ~1.4 MB each and the WAL writer flushes every wal_writer_delay), which no receiver can have; "not yet sent" (\`pg_current_wal_lsn()\` minus sent_lsn) is that server-side part, which a receiver only shortens by leaving the CPUs to the server. pgpitr receive-wal runs in repository mode (completed segments compressed with ${opt.compress} into a fresh stanza); pg_receivewal writes plain segments into a directory (PostgreSQL 15's pg_receivewal cannot compress with zstd). With \`--synchronous\` both receivers fsync and report write and flush after what they received; without it, positions are reported only every status interval (-s, default 10 s) or when the server asks, flush only advances at segment ends, and pg_receivewal without a replication slot reports no flush position at all (flush_lsn stays NULL: "not reported"), so lag then mostly measures those intervals rather than the tool. "catch-up" = time after pgbench's end until the reported flush position reaches the LSN it ended at (– if not within 60 s).`, '');
const pooled = [];
for (const extra of opt.receiveArgs) {
  for (const receiver of opt.receivers) {
    const runs = lags.filter((r) => r.ok && r.receiver === receiver && r.args === extra);
    if (!runs.length) continue;
    const all = runs.flatMap((r) => r.fromFlush);
    const fl = runs.flatMap((r) => r.flushLag);
    pooled.push({
      receiver, args: extra, runs: runs.length, samples: all.length,
      p50: pct(all, 0.5), p90: pct(all, 0.9), p95: pct(all, 0.95), max: Math.max(...all),
      fP95: fl.length ? pct(fl, 0.95) : NaN,
      cpu: runs.reduce((a, r) => a + r.cpu, 0) / runs.length,
      wal: runs.reduce((a, r) => a + r.walSegPerSec, 0) / runs.length,
      tps: runs.reduce((a, r) => a + r.tps, 0) / runs.length,
    });
  }
}
if (pooled.length) {
  L.push(`Summary over all runs (${opt.receiverRuns} per receiver, receivers alternating; percentiles of the pooled 100 ms samples):`, '');
  L.push('| receiver | arguments | runs | samples | behind server flush median | p90 | p95 | max | p95 / 16 MiB segment | flush lag p95 | WAL segments/s (mean) | pgbench tps (mean) | receiver CPU s per run (mean) | p95 vs pg_receivewal |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of pooled) {
    const base = pooled.find((x) => x.receiver === 'pg_receivewal' && x.args === r.args);
    L.push(`| ${r.receiver} | \`${r.args || '(none)'}\` | ${r.runs} | ${r.samples} | ${mibU(r.p50)} | ${mibU(r.p90)} | ${mibU(r.p95)} | ${mibU(r.max)} | ${segFrac(r.p95)} | ${mibU(r.fP95)} | ${f1(r.wal)} | ${f1(r.tps)} | ${f2(r.cpu)} | ${base ? ratio(r.p95, base.p95) : '–'} |`);
  }
  L.push('', 'Each run:', '');
}
L.push('| receiver | arguments | behind server flush p95 | behind server flush median | behind server flush max | p95 / 16 MiB segment | flush lag p95 | flush lag median | flush lag max | write lag p95 | not yet sent p95 / median | catch-up s | samples | WAL segments/s | pgbench tps | receiver CPU s during the run | p95 behind server flush vs pg_receivewal |');
L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of lags) {
  const argsCell = `\`${r.args || '(none)'}\``;
  if (!r.ok) { L.push(`| ${r.receiver} | ${argsCell} | ${failCell(r)} | | | | | | | | | | | | | | |`); continue; }
  const base = lags.find((x) => x.ok && x.receiver === 'pg_receivewal' && x.args === r.args);
  L.push(`| ${r.receiver} | ${argsCell} | ${lagCell(r.rP95)} | ${mibU(r.rP50)} | ${mibU(r.rMax)} | ${Number.isFinite(r.rP95) ? `${segFrac(r.rP95)} (max ${segFrac(r.rMax)})` : '–'} | ${mibU(r.fP95)} | ${mibU(r.fP50)} | ${mibU(r.fMax)} | ${mibU(r.wP95)} | ${mibU(r.sP95)} / ${mibU(r.sP50)} | ${f2(r.catchUp)} | ${r.samples} | ${f1(r.walSegPerSec)} | ${f1(r.tps)} | ${f2(r.cpu)} | ${base ? ratio(r.rP95, base.rP95) : '–'} |`);
}
if (!lags.length) L.push('| (not run) | | | | | | | | | | | | | | | | |');
L.push('');
if (lags.some((r) => r.ok && r.series.length)) {
  L.push('Lag (MiB) per second during the run, behind the server\'s flush position and (flush lag) behind its current WAL position:', '');
  L.push('| receiver | arguments | lag | MiB, one sample per second |', '|---|---|---|---|');
  for (const r of lags) {
    if (!r.ok || !r.series.length) continue;
    L.push(`| ${r.receiver} | \`${r.args || '(none)'}\` | behind server flush | ${r.seriesR.map((b) => Math.round(b / 2 ** 20)).join(' ')} |`);
    L.push(`| ${r.receiver} | \`${r.args || '(none)'}\` | flush lag | ${r.series.map((b) => Math.round(b / 2 ** 20)).join(' ')} |`);
  }
  L.push('');
}

L.push('### Commands', '');
L.push(`\`$C\` is the cluster's temp dir (data directory \`$C/data\`, socket \`$C/sock\`), \`$W\` the run's scratch directory \`$C/w\`${snapshot ? ', `$COPY` the private copy of the project\'s dist/ (with package.json and node_modules) that pgpitr ran from' : ''}.`, '');
L.push(`- Load: ${loadDesc}`);
L.push(`- Backlog: \`pgbench ${pgbenchArgs(600, true).join(' ')}\` (stopped by SIGINT when the WAL has advanced ${opt.segments - 1} segments), then \`select pg_switch_wal()\``);
for (const tool of opt.tools) {
  const c = commands[tool];
  if (c) L.push(`- ${tool}: \`archive_command = '${c.shown}'\`${c.config ? `; pgbackrest.conf: \`${c.config}\`` : ''}`);
}
for (const [tag, c] of Object.entries(receiverCommands)) L.push(`- receiver ${tag}: \`${c}\``);
L.push('');
for (const n of notes) L.push(`- Note: ${n}`);
if (notes.length) L.push('');
const section = L.join('\n');
console.log(section);

replaceSection(opt.out, HEADING, section);
log(`wrote section to ${opt.out}`);
const failed = [...drains, ...loads, ...lags].filter((r) => !r.ok);
if (failed.length) {
  log(`${failed.length} measurement(s) failed: ${[...new Set(failed.map((r) => r.tool ?? r.receiver))].join(', ')}`);
  process.exit(1);
}
