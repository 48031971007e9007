#!/usr/bin/env node
// Benchmark: repositories in S3 and encrypted, against the posix repository on
// the same data in one run, and pgBackRest on the same S3 server.
//   - backup (-j 2 / --process-max 2) and restore (2 processes) of a pgbench cluster: pgpitr on
//     posix, posix encrypted, S3, S3 encrypted; pgBackRest on S3;
//   - archive-push, one process per segment, as archive_command runs it: pgpitr on posix, S3, S3
//     encrypted; pgBackRest on S3;
//   - the asynchronous archiver draining a backlog of segments (archive_command called for each in
//     turn, as PostgreSQL's archiver does): pgpitr on posix, S3, S3 encrypted.
// The S3 server is the tests' (s3rver behind test/helpers/s3-server.mjs) over HTTPS with a test CA,
// on loopback, storing on the same disk as the posix repository. Medians, ratios and peak RSS (GNU
// time) go to bench/RESULTS.md.
//
//   node bench/s3.mjs [--scale N] [--runs N] [--segments N] [--out FILE] [--only PARTS] [--kinds KINDS] [--s3-latency MS]
//
// --only backup,push,drain runs only those parts, --kinds s3,posix only those repositories (of
// posix, posix-cipher, s3, s3-cipher, pgbackrest-s3); either prints the results and leaves
// RESULTS.md alone (its section is for the full run). --logs DIR keeps the async pushers' logs.
// --s3-latency MS: the S3 server answers every request MS ms later in the archive-push and drain
// parts (a store across a network rather than on loopback).
//
// Needs a built tree, PostgreSQL 15 from Debian, pgbackrest, /usr/bin/time, root.

import { spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replaceSection } from './results-file.mjs';
import { log, measured, median, mkdirPg, pgGid, pgUid, warm } from './as-postgres.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const PGPITR = join(ROOT, 'dist/src/cli/main.js');
const SPOOL_WAIT = join(ROOT, 'bin/pgpitr-spool-wait');
const PGBIN = '/usr/lib/postgresql/15/bin';
const { TestCluster, destroyAll } = await import(join(ROOT, 'dist/test/harness/cluster.js'));
const { startS3Server, TEST_CREDENTIALS } = await import(join(ROOT, 'dist/test/helpers/s3-server.js'));
const { makeTestCertificates } = await import(join(ROOT, 'dist/test/helpers/tls-certs.js'));

const PARTS = ['backup', 'push', 'drain'];
const KINDS = ['posix', 'posix-cipher', 's3', 's3-cipher', 'pgbackrest-s3'];
const opt = { scale: 100, runs: 3, segments: 24, out: join(HERE, 'RESULTS.md'), only: PARTS, kinds: KINDS, partial: false, logs: '', latency: 0 };
const usage = () => {
  process.stderr.write('usage: node bench/s3.mjs [--scale N] [--runs N] [--segments N] [--out FILE] [--only backup,push,drain] [--kinds posix,posix-cipher,s3,s3-cipher,pgbackrest-s3] [--logs DIR] [--s3-latency MS]\n');
  process.exit(2);
};
const listOpt = (text, allowed) => {
  const xs = text.split(',').filter((x) => x !== '');
  if (xs.length === 0 || xs.some((x) => !allowed.includes(x))) usage();
  opt.partial = true;
  return xs;
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--scale') opt.scale = Number(argv[++i]);
  else if (a === '--runs') opt.runs = Number(argv[++i]);
  else if (a === '--segments') opt.segments = Number(argv[++i]);
  else if (a === '--out') opt.out = resolve(argv[++i]);
  else if (a === '--only') opt.only = listOpt(argv[++i] ?? '', PARTS);
  else if (a === '--kinds') opt.kinds = listOpt(argv[++i] ?? '', KINDS);
  else if (a === '--logs') opt.logs = resolve(argv[++i]);
  else if (a === '--s3-latency') opt.latency = Number(argv[++i]);
  else usage();
}
const wanted = (part, k) => opt.only.includes(part) && (k === undefined || opt.kinds.includes(k));


const writePg = (p, text, mode = 0o600) => {
  writeFileSync(p, text, { mode });
  chownSync(p, pgUid, pgGid);
  return p;
};

const results = { backup: {}, restore: {}, push: {}, drain: {} };
const started = new Date();
let server;
try {
  log(`PostgreSQL 15, pgbench scale ${opt.scale}`);
  const certs = await makeTestCertificates('s3-client');
  server = await startS3Server({ tls: { cert: certs.serverCert, key: certs.serverKey } });
  log(`S3 test server at ${server.endpoint}`);
  const c = await TestCluster.create({ version: 15, name: 'benchs3', conf: { max_wal_size: '4GB', checkpoint_timeout: '30min' } });
  const env = c.connectionEnv();
  const work = mkdirPg(c.tempDir('bench'));
  const walCopies = mkdirPg(join(work, 'wal-copies'));
  const misc = mkdirPg(join(work, 'misc'));

  // pgpitr's repositories, each reached through a configuration file (the S3 credentials in it).
  const s3Lines = (prefix) => [
    'repo1-type=s3', `repo1-s3-endpoint=${server.endpoint}`, 'repo1-s3-bucket=bkt', 'repo1-s3-region=us-east-1', 'repo1-s3-uri-style=path',
    `repo1-storage-ca-file=${certs.caCert}`, `repo1-s3-key=${TEST_CREDENTIALS.accessKeyId}`, `repo1-s3-key-secret=${TEST_CREDENTIALS.secretAccessKey}`, `repo1-path=${prefix}`,
  ];
  const cipher = ['repo1-cipher-type=aes-256-gcm', 'repo1-cipher-pass=a long benchmark passphrase, 2026-12'];
  const kinds = {
    posix: [`repo1-path=${mkdirPg(join(work, 'posix'))}`],
    'posix-cipher': [`repo1-path=${mkdirPg(join(work, 'posix-cipher'))}`, ...cipher],
    s3: s3Lines('/plain'),
    's3-cipher': [...s3Lines('/enc'), ...cipher],
  };
  // One configuration with the four as repo1..repo4 (archived into by one archive-push, backed up
  // into with --repo N), and one per kind for the archive-push measurements (fresh stanzas).
  const names = Object.keys(kinds);
  const allConf = writePg(join(work, 'all.conf'), [
    '[global]', ...names.flatMap((k, i) => kinds[k].map((l) => l.replace(/^repo1-/, `repo${i + 1}-`))), `spool-path=${mkdirPg(join(misc, 'spool-all'))}`, 'process-max=2', '',
  ].join('\n'));
  const confOf = {};
  for (const [k, lines] of Object.entries(kinds)) confOf[k] = writePg(join(work, `${k}.conf`), ['[global]', ...lines, `spool-path=${mkdirPg(join(misc, `spool-${k}`))}`, ''].join('\n'));
  const pArgs = (k) => ['--config', allConf, '--stanza', 'bench', '--repo', String(names.indexOf(k) + 1)];

  // pgBackRest on the same S3 server (HTTPS: it has no plain-HTTP S3), credentials in its environment.
  const bConf = writePg(join(work, 'pgbackrest.conf'), [
    '[global]', 'repo1-type=s3', 'repo1-s3-endpoint=localhost', `repo1-storage-port=${server.port}`, 'repo1-s3-bucket=bkt', 'repo1-s3-region=us-east-1',
    'repo1-s3-uri-style=path', `repo1-storage-ca-file=${certs.caCert}`, 'repo1-path=/pgbackrest', 'compress-type=zst', 'archive-async=y', 'process-max=2',
    'log-level-console=warn', 'log-level-stderr=warn', 'log-level-file=off', `log-path=${misc}`, `lock-path=${misc}`, `spool-path=${misc}`, 'start-fast=y', '',
    '[bench]', `pg1-path=${c.dataDir}`, `pg1-socket-path=${env.PGHOST}`, `pg1-port=${env.PGPORT}`, 'pg1-user=postgres', '',
  ].join('\n'));
  const bEnv = { ...env, PGBACKREST_REPO1_S3_KEY: TEST_CREDENTIALS.accessKeyId, PGBACKREST_REPO1_S3_KEY_SECRET: TEST_CREDENTIALS.secretAccessKey };
  const bArgs = [`--config=${bConf}`, '--stanza=bench'];

  // Every backup waits for its WAL in its own archive: both tools archive every segment, each
  // asynchronously (so that the wait at the end of a backup is short and alike), and a plain copy
  // is kept for the archive-push measurements.
  const q = (s) => `'${s}'`;
  const archive = [
    `cp "$1" ${q(walCopies)}/"$(basename "$1")"`,
    `PGBACKREST_REPO1_S3_KEY=${TEST_CREDENTIALS.accessKeyId} PGBACKREST_REPO1_S3_KEY_SECRET=${TEST_CREDENTIALS.secretAccessKey} pgbackrest --config=${bConf} --stanza=bench archive-push "$1"`,
    `${q(SPOOL_WAIT)} ${q(join(misc, 'spool-all', 'bench', 'archive-push'))} "$(basename "$1")" || ${q(process.execPath)} ${q(PGPITR)} archive-push --archive-async --config ${q(allConf)} --stanza bench "$1"`,
  ].join('\n');
  // In a script: PostgreSQL 15 cuts an archive_command longer than 1024 bytes once %p is replaced
  // (and pgBackRest wants its name in archive_command).
  const script = writePg(join(work, 'archive-pgbackrest-and-pgpitr.sh'), `#!/bin/sh\nset -e\n${archive}\n`, 0o700);
  await c.sql(`alter system set archive_mode = 'on'`);
  await c.sql(`alter system set archive_command = '${script} %p'`);
  await c.restart();
  measured(process.execPath, [PGPITR, 'stanza-create', '--config', allConf, '--stanza', 'bench'], env);
  measured('pgbackrest', [...bArgs, 'stanza-create'], bEnv);
  const init = spawnSync(join(PGBIN, 'pgbench'), ['-i', '-q', '-s', String(opt.scale)], { env: { ...process.env, ...env }, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(init.stderr);
  await c.sql('vacuum analyze');
  await c.sql('checkpoint');
  const [{ wal }] = await c.sql('select pg_walfile_name(pg_switch_wal()) as wal');
  for (let i = 0; i < 6000; i++) {
    const [{ last, failed }] = await c.sql(`select coalesce(last_archived_wal, '') as last, failed_count::int as failed from pg_stat_archiver`);
    if (last.slice(0, 24) >= wal) break;
    if (i % 100 === 99) log(`archiving the load's WAL: at ${last}, ${failed} failures`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const dbBytes = Number((await c.sql(`select sum(pg_database_size(oid))::bigint as b from pg_database`))[0].b);
  log(`cluster: ${(dbBytes / 2 ** 30).toFixed(2)} GiB of databases`);

  // Backup and restore: zstd (the default) on every kind; no compression on posix with and
  // without encryption, where the cipher handles the most bytes.
  const cases = [
    ...['posix', 'posix-cipher', 's3', 's3-cipher', 'pgbackrest-s3'].map((k) => ({ k, comp: 'zstd' })),
    ...['posix', 'posix-cipher'].map((k) => ({ k, comp: 'none' })),
  ].filter(({ k }) => wanted('backup', k));
  for (const { k, comp } of cases) {
    const key = `${k} ${comp}`;
    const bs = [];
    const rs = [];
    for (let run = 0; run < opt.runs; run++) {
      warm(c.dataDir);
      let id = '';
      if (k === 'pgbackrest-s3') {
        bs.push(measured('pgbackrest', [...bArgs, '--type=full', `--compress-type=${comp === 'zstd' ? 'zst' : comp}`, '--process-max=2', 'backup'], bEnv));
      } else {
        const r = measured(process.execPath, [PGPITR, 'backup', ...pArgs(k), '-j', '2', '--start-fast', '--compress-type', comp, '--output', 'json'], env);
        id = JSON.parse(r.out).id;
        bs.push(r);
      }
      log(`backup ${key}: ${bs.at(-1).s.toFixed(2)} s, ${bs.at(-1).rssMb.toFixed(0)} MB`);
      const dest = join(work, 'restore');
      rmSync(dest, { recursive: true, force: true });
      mkdirPg(dest);
      rs.push(k === 'pgbackrest-s3'
        ? measured('pgbackrest', [...bArgs, `--pg1-path=${dest}`, '--process-max=2', '--type=immediate', 'restore'], bEnv)
        : measured(process.execPath, [PGPITR, 'restore', ...pArgs(k), '--set', id, '-D', dest, '--process-max', '2', '--target-immediate'], env));
      log(`restore ${key}: ${rs.at(-1).s.toFixed(2)} s, ${rs.at(-1).rssMb.toFixed(0)} MB`);
      if (k === 'pgbackrest-s3') measured('pgbackrest', [...bArgs, '--repo1-retention-full=1', 'expire'], bEnv);
      else measured(process.execPath, [PGPITR, 'expire', ...pArgs(k), '--retention-full', '1'], env);
    }
    results.backup[key] = { s: median(bs.map((x) => x.s)), rss: Math.max(...bs.map((x) => x.rssMb)), runs: bs.map((x) => x.s) };
    results.restore[key] = { s: median(rs.map((x) => x.s)), rss: Math.max(...rs.map((x) => x.rssMb)), runs: rs.map((x) => x.s) };
  }

  if (opt.latency > 0) {
    await server.faults({ latencyMs: opt.latency });
    log(`S3 server: every request answered ${opt.latency} ms later from here on`);
  }
  // archive-push, one process per segment, into fresh stanzas (segments of the load, copied).
  const segments = readdirSync(walCopies).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort().slice(0, opt.segments);
  log(`archive-push: ${segments.length} segments per archiver`);
  const freshStanza = (k, name) => {
    const args = ['--config', confOf[k], '--stanza', name];
    measured(process.execPath, [PGPITR, 'stanza-create', ...args], env);
    return args;
  };
  for (const k of ['posix', 's3', 's3-cipher', 'pgbackrest-s3'].filter((x) => wanted('push', x))) {
    const per = [];
    let args;
    if (k === 'pgbackrest-s3') {
      args = [`--config=${bConf}`, '--stanza=bench', '--repo1-path=/pgbackrest-push'];
      measured('pgbackrest', [...args, 'stanza-create'], bEnv);
      args.push('--no-archive-async');
    } else args = freshStanza(k, 'push');
    const t0 = process.hrtime.bigint();
    let rss = 0;
    for (const seg of segments) {
      const r = k === 'pgbackrest-s3'
        ? measured('pgbackrest', [...args, 'archive-push', join(walCopies, seg)], bEnv)
        : measured(process.execPath, [PGPITR, 'archive-push', ...args, join(walCopies, seg)], env);
      per.push(r.s);
      rss = Math.max(rss, r.rssMb);
    }
    const total = Number(process.hrtime.bigint() - t0) / 1e9;
    results.push[k] = { perSegment: median(per), total, rss };
    log(`archive-push ${k}: ${median(per).toFixed(3)} s per segment (median), ${total.toFixed(1)} s for ${segments.length}`);
  }

  // The asynchronous archiver: archive_command as PostgreSQL's archiver runs it, segment after
  // segment, over a pg_wal whose segments are all ready (a backlog), with pgpitr-spool-wait in front.
  // Each run into a fresh stanza (its own spool and pusher), the kinds in turn within a run.
  const drainKinds = ['posix', 's3', 's3-cipher'].filter((x) => wanted('drain', x));
  // What bounds the drain on this machine: how busy its CPUs were, and how much of that was the
  // S3 test server (s3rver, Node, on the same 2 cores), from /proc.
  const ticks = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const serverTicks = () => {
    const pid = server?.pid;
    if (!pid) return 0;
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(f[11]) + Number(f[12]); // utime, stime
    } catch {
      return 0;
    }
  };
  const cpuNow = () => ({ all: ticks(), server: serverTicks() });
  const cpuSince = (c0) => {
    const c1 = cpuNow();
    const d = c1.all.map((x, i) => x - c0.all[i]);
    const total = d.reduce((a, b) => a + b, 0);
    const idle = d[3] + d[4];
    return { busyShare: total > 0 ? 1 - idle / total : 0, server: (c1.server - c0.server) / 100 };
  };
  const drainCpu = {};
  const drains = Object.fromEntries(drainKinds.map((k) => [k, []]));
  for (let run = 1; run <= opt.runs; run++) {
    for (const k of drainKinds) {
      const stanza = `drain${run}`;
      const args = freshStanza(k, stanza);
      const pgWal = mkdirPg(join(work, `drain-${k}-${run}`, 'pg_wal'));
      const status = mkdirPg(join(pgWal, 'archive_status'));
      for (const seg of segments) {
        copyFileSync(join(walCopies, seg), join(pgWal, seg));
        chownSync(join(pgWal, seg), pgUid, pgGid);
        writePg(join(status, `${seg}.ready`), '', 0o600);
      }
      const spool = mkdirPg(join(misc, `drain-spool-${k}`));
      const cpu0 = cpuNow();
      const t0 = process.hrtime.bigint();
      const calls = [];
      for (const seg of segments) {
        const cmd = `${q(SPOOL_WAIT)} ${q(join(spool, stanza, 'archive-push'))} ${seg} || ${q(process.execPath)} ${q(PGPITR)} archive-push --archive-async --spool-path ${q(spool)} --process-max 2 ${args.map(q).join(' ')} ${q(join(pgWal, seg))}`;
        const at = Number(process.hrtime.bigint() - t0) / 1e9;
        // In the data directory, as PostgreSQL's archiver runs it: pgpitr-spool-wait answers only for a
        // marker newer than pg_wal/FILE (relative path), and only for the pusher of $(pwd)/pg_wal.
        const m = measured('sh', ['-c', cmd], env, dirname(pgWal));
        // A call that ran Node (not answered by pgpitr-spool-wait alone) has tens of MB.
        calls.push(`${seg} at ${at.toFixed(3)} s: ${m.s.toFixed(2)} s, ${m.rssMb.toFixed(0)} MB`);
        renameSync(join(status, `${seg}.ready`), join(status, `${seg}.done`));
      }
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = cpuSince(cpu0);
      rmSync(join(work, `drain-${k}-${run}`), { recursive: true, force: true }); // 16 MiB a segment
      drains[k].push(s);
      drainCpu[k] ??= [];
      drainCpu[k].push(cpu);
      log(`async drain ${k}: ${segments.length} segments in ${s.toFixed(1)} s, ${(segments.length / s).toFixed(1)} segments/s; machine busy ${(100 * cpu.busyShare).toFixed(0)}%, S3 server CPU ${cpu.server.toFixed(2)} s`);
      if (opt.logs) {
        mkdirSync(opt.logs, { recursive: true });
        writeFileSync(join(opt.logs, `drain-${k}-${run}.calls`), calls.join('\n') + '\n');
        try {
          copyFileSync(join(spool, stanza, 'archive-push', 'pusher.log'), join(opt.logs, `drain-${k}-${run}.log`));
        } catch {
          /* no pusher started */
        }
      }
    }
  }
  for (const [k, xs] of Object.entries(drains)) {
    const s = median(xs);
    const cpu = drainCpu[k] ?? [];
    results.drain[k] = {
      s,
      rate: segments.length / s,
      runs: xs.map((x) => segments.length / x),
      busy: median(cpu.map((c) => c.busyShare)),
      serverMsPerSegment: (1000 * median(cpu.map((c) => c.server))) / segments.length,
    };
  }
} finally {
  await destroyAll();
  await server?.stop();
}

if (opt.partial) {
  // Part of the bench: the numbers on stdout, RESULTS.md untouched.
  const f = (x) => x.toFixed(2);
  for (const [key, x] of Object.entries(results.backup)) {
    const y = results.restore[key];
    log(`backup ${key}: median ${f(x.s)} s (${x.runs.map(f).join(', ')}), peak RSS ${x.rss.toFixed(0)} MB; restore median ${f(y.s)} s (${y.runs.map(f).join(', ')}), peak RSS ${y.rss.toFixed(0)} MB`);
  }
  for (const [k, x] of Object.entries(results.push)) log(`archive-push ${k}: ${x.perSegment.toFixed(3)} s per segment, ${x.rss.toFixed(0)} MB`);
  for (const [k, x] of Object.entries(results.drain)) log(`async drain ${k}: ${x.rate.toFixed(1)} segments/s (${x.runs.map((y) => y.toFixed(1)).join(', ')})${results.drain.posix ? `, ${(x.rate / results.drain.posix.rate).toFixed(2)} x posix` : ''}; machine busy ${(100 * x.busy).toFixed(0)}%, S3 server ${x.serverMsPerSegment.toFixed(0)} ms CPU per segment`);
  process.exit(0);
}

const b = results.backup;
const r = results.restore;
const p = results.push;
const d = results.drain;
const f = (x) => x.toFixed(2);
const lines = [
  '## Object storage and encryption (bench/s3.mjs)',
  '',
  `Run ${started.toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; PostgreSQL 15, pgbench scale ${opt.scale}; ` +
    `${spawnSync('pgbackrest', ['version'], { encoding: 'utf8' }).stdout.trim()}; S3: the tests' s3rver over HTTPS on loopback, on the same disk as the posix repository${opt.latency > 0 ? ` (answering ${opt.latency} ms late in the archive-push and drain parts)` : ''}; ${opt.runs} runs, median wall seconds, peak RSS the largest.`,
  'pgpitr: `backup -j 2`, `restore --process-max 2 --target-immediate`; pgBackRest: `--process-max=2`. Targets: S3 within 1.5x of posix (backup and restore), encryption under 15% of backup time, peak RSS under 250 MB, the async archiver on S3 at least as fast as on posix.',
  '',
  '| repository | compression | backup s | restore s | backup / posix | restore / posix | RSS backup / restore |',
  '|---|---|---:|---:|---:|---:|---:|',
];
for (const key of Object.keys(b)) {
  const comp = key.split(' ')[1];
  const base = `posix ${comp}`;
  lines.push(`| ${key.split(' ')[0]} | ${comp} | ${f(b[key].s)} | ${f(r[key].s)} | **${f(b[key].s / b[base].s)}** | **${f(r[key].s / r[base].s)}** | ${b[key].rss.toFixed(0)} / ${r[key].rss.toFixed(0)} MB |`);
}
lines.push(
  '',
  `Encryption cost on backup wall time: posix zstd ${(100 * (b['posix-cipher zstd'].s / b['posix zstd'].s - 1)).toFixed(0)}%, posix none ${(100 * (b['posix-cipher none'].s / b['posix none'].s - 1)).toFixed(0)}%, S3 zstd ${(100 * (b['s3-cipher zstd'].s / b['s3 zstd'].s - 1)).toFixed(0)}%.`,
  `pgpitr on S3 against pgBackRest on S3 (zstd): backup ${f(b['s3 zstd'].s / b['pgbackrest-s3 zstd'].s)}, restore ${f(r['s3 zstd'].s / r['pgbackrest-s3 zstd'].s)}.`,
  '',
  '| archive-push, one process per segment | median s per segment | RSS MB |',
  '|---|---:|---:|',
  ...Object.entries(p).map(([k, x]) => `| ${k} | ${x.perSegment.toFixed(3)} | ${x.rss.toFixed(0)} |`),
  '',
  '| asynchronous archiver, backlog drain | segments/s | vs posix | machine CPUs busy | S3 server CPU per segment |',
  '|---|---:|---:|---:|---:|',
  ...Object.entries(d).map(([k, x]) => `| ${k} | ${x.rate.toFixed(1)} | ${(x.rate / d.posix.rate).toFixed(2)} | ${(100 * x.busy).toFixed(0)}% | ${k === 'posix' ? '' : `${x.serverMsPerSegment.toFixed(0)} ms`} |`),
  '',
  'All runs (seconds):',
  '',
  ...Object.entries(b).map(([k, x]) => `- backup ${k}: ${x.runs.map(f).join(', ')}`),
  ...Object.entries(r).map(([k, x]) => `- restore ${k}: ${x.runs.map(f).join(', ')}`),
  ...Object.entries(d).map(([k, x]) => `- async drain ${k} (segments/s): ${x.runs.map((y) => y.toFixed(1)).join(', ')}`),
);
replaceSection(opt.out, lines[0], lines.join('\n'));
log(`results in ${opt.out}`);
