// receive-wal killed at any instant (SIGKILL) loses nothing: the next start
// completes a segment that was received in full but not yet renamed (the crash
// window between a segment's end and its rename, while the next one is already
// being written), in directory and in repository mode; and what the server was
// told is flushed (the slot's restart_lsn) is always in files the next start
// finds. Checked against the server's own WAL files, by pg_waldump (15) and by
// `info` (no gap in the archive).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv } from '../helpers/pgpitr.js';
import { startReceiver, until } from '../helpers/receive-wal.js';
import { archivedOnDisk } from '../helpers/archiving.js';
import { eachOf } from '../helpers/each-of.js';
import { parseLsn, parseSegmentFileName, segmentFileName, segmentNumber } from '../../src/postgres/lsn.js';

const SEG_SIZE = 16 * 1024 * 1024;
const SEGMENT = /^[0-9A-F]{24}$/;
async function pgpitrOk(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const r = await runPgpitr(args, env);
  assert.equal(r.code, 0, `pgpitr ${args.join(' ')}: ${r.stderr}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function segNoOf(name: string): bigint {
  return parseSegmentFileName(name, SEG_SIZE)!.segNo;
}

function nameOf(segNo: bigint): string {
  return segmentFileName(1, segNo, SEG_SIZE);
}

async function switchWal(c: TestCluster): Promise<string> {
  await c.sql('insert into filler select md5(i::text) from generate_series(1, 100) i');
  return (await c.sql<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name'))[0]!.name;
}

/** A write load: inserts, now and then a WAL switch, until stopped. */
function startLoad(c: TestCluster): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await c.sql('insert into filler select repeat(md5(i::text), 16) from generate_series(1, 3000) i');
      if (i % 3 === 2) await c.sql('select pg_switch_wal()');
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

/**
 * A physical slot reserves WAL from the last checkpoint's redo point: after a checkpoint, that is where
 * the server is. The receiver then streams the load of the subtest, not the WAL of the ones before it
 * (up to 40 segments, on which the kills would all have fallen, before `first` and so unchecked).
 */
async function newSlotHere(src: TestCluster, slot: string): Promise<void> {
  await src.sql('checkpoint');
  await pgpitrOk(['receive-wal', '--create-slot', '-S', slot], clusterEnv(src));
}

async function slotFlush(c: TestCluster, slot: string): Promise<bigint | null> {
  const row = (await c.sql<{ lsn: string | null }>('select restart_lsn::text as lsn from pg_replication_slots where slot_name = $1', [slot]))[0];
  return row?.lsn ? parseLsn(row.lsn) : null;
}

/**
 * Right after a kill: every byte the server was told is flushed is in a file the
 * next start finds (a complete segment, here or archived, or a .partial that is
 * completed or resumed from), with the server's own content. A complete segment
 * found equal at an earlier kill is not read again while its file is unchanged
 * (same inode, size and mtime): `verified` remembers them (a run re-reads every
 * complete one at its end).
 */
function assertFlushedOnDisk(src: TestCluster, dir: string, archived: Set<string>, first: bigint, flush: bigint, ext: string, verified: Map<string, string>): void {
  const names = new Set(readdirSync(dir));
  const walDir = join(src.dataDir, 'pg_wal');
  const last = segmentNumber(flush, SEG_SIZE);
  for (let s = first; s <= last; s++) {
    const name = nameOf(s);
    const upTo = s < last ? SEG_SIZE : Number(flush % BigInt(SEG_SIZE));
    if (upTo === 0 || archived.has(name)) continue;
    let file: string;
    if (names.has(name + ext)) file = name + ext;
    else if (names.has(`${name}${ext}.partial`)) {
      file = `${name}${ext}.partial`;
      const successor = nameOf(s + 1n);
      if (s < last) {
        assert.ok(names.has(successor + ext) || names.has(`${successor}${ext}.partial`) || archived.has(successor), `${file} is flushed in full but has no successor: the next start would resume in it`);
      }
    } else {
      assert.fail(`${name} was reported flushed up to ${upTo} bytes but is not on disk (files: ${[...names].sort().join(' ')})`);
    }
    const complete = file === name + ext;
    const st = complete ? statSync(join(dir, file)) : null;
    const identity = st ? `${st.ino} ${st.size} ${st.mtimeMs}` : '';
    if (complete && verified.get(file) === identity) continue;
    const ours = readSegment(join(dir, file)).subarray(0, upTo);
    const theirs = readFileSync(join(walDir, name)).subarray(0, upTo);
    assert.ok(ours.equals(theirs), `${file} differs from the server's ${name} within what was reported flushed`);
    if (complete && upTo === SEG_SIZE) verified.set(file, identity);
  }
}

/** A received file's WAL bytes (a .gz file, even one cut short, is decompressed). */
function readSegment(path: string): Buffer {
  const raw = readFileSync(path);
  return /\.gz(\.partial)?$/.test(path) ? gunzipSync(raw, { finishFlush: zlibConstants.Z_SYNC_FLUSH }) : raw;
}

function partials(dir: string): number {
  return readdirSync(dir).filter((n) => n.endsWith('.partial')).length;
}

/** Resolves as soon as (inotify) two .partial files exist: true; false after `timeoutMs`. */
function twoPartials(dir: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (seen: boolean) => {
      clearTimeout(timer);
      watcher.close();
      resolve(seen);
    };
    const watcher = watch(dir, () => {
      if (partials(dir) >= 2) finish(true);
    });
    const timer = setTimeout(() => finish(false), timeoutMs);
    if (partials(dir) >= 2) finish(true);
  });
}

/**
 * Kills receive-wal `kills` times under a write load, at random moments or right when two .partial files exist.
 * The slot is new and nothing is received yet: the receiver starts at the slot's restart point, `first`.
 */
async function killRepeatedly(src: TestCluster, args: string[], dir: string, slot: string, kills: number, archived: () => Set<string>, ext = ''): Promise<{ first: bigint; windows: number }> {
  const env = clusterEnv(src);
  const first = segmentNumber((await slotFlush(src, slot))!, SEG_SIZE);
  const load = startLoad(src);
  let rx = startReceiver(args, env);
  let windows = 0;
  const verified = new Map<string, string>();
  try {
    for (let i = 0; i < kills; i++) {
      await until('streaming', () => /receiving/.test(rx.log()), rx.log);
      if (i % 2 === 0) await sleep(200 + Math.floor(Math.random() * 1500));
      else if (await twoPartials(dir, 8000)) windows++;
      assert.equal(await rx.kill(), null, rx.log()); // killed, not exited
      const flush = await slotFlush(src, slot);
      if (flush !== null) assertFlushedOnDisk(src, dir, archived(), first, flush, ext, verified);
      rx = startReceiver(args, env);
    }
  } finally {
    await load.stop();
  }
  const last = await switchWal(src);
  await until(`${last} received`, () => existsSync(join(dir, last + ext)) || archived().has(last), rx.log, 120_000);
  assert.equal(await rx.stop(), 0, rx.log());
  return { first, windows };
}

// Kills at random moments test pgpitr, not the server: one version proves it (PGPITR_CRASH_VERSIONS, run.mjs: 18).
for (const version of versionsFromEnv("PGPITR_CRASH_VERSIONS")) {
  test(`receive-wal after a crash (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `rwc${version}`, conf: { wal_keep_size: '2GB', max_wal_size: '4GB' } });
    const env = clusterEnv(src);
    const walDir = join(src.dataDir, 'pg_wal');
    await src.sql('create table filler(x text)');

    await t.test('directory mode: a segment whose rename was lost is completed at the next start', async () => {
      const dir = src.tempDir('rwc-lost-rename');
      await pgpitrOk(['receive-wal', '--create-slot', '-S', 'rwc_lost'], env);
      let rx = startReceiver(['-D', dir, '-S', 'rwc_lost'], env);
      await until('streaming', () => /receiving/.test(rx.log()), rx.log);
      const done = await switchWal(src);
      const next = nameOf(segNoOf(done) + 1n);
      await src.sql('insert into filler values (1)');
      await until(`${done} received and ${next} begun`, () => existsSync(join(dir, done)) && existsSync(join(dir, `${next}.partial`)), rx.log);
      assert.equal(await rx.stop(), 0, rx.log());
      // The state a kill leaves between a segment's end and its rename.
      renameSync(join(dir, done), join(dir, `${done}.partial`));
      rx = startReceiver(['-D', dir, '-S', 'rwc_lost'], env);
      const later = await switchWal(src);
      await until(`${later} received`, () => existsSync(join(dir, later)), rx.log);
      assert.equal(await rx.stop(), 0, rx.log());
      assert.ok(existsSync(join(dir, done)), `${done} stayed .partial: a permanent gap (files: ${readdirSync(dir).join(' ')})`);
      assert.ok(!existsSync(join(dir, `${done}.partial`)));
      for (const n of [done, next]) assert.ok(readFileSync(join(dir, n)).equals(readFileSync(join(walDir, n))), `${n} differs`);
      await pgpitrOk(['receive-wal', '--drop-slot', '-S', 'rwc_lost'], env);
    });

    await t.test('repository mode: a segment whose rename was lost is stored at the next start', async () => {
      const repo = src.tempDir('rwc-lost-repo');
      const spool = src.tempDir('rwc-lost-spool');
      await pgpitrOk(['stanza-create', '--repo', repo, '--stanza', 'main'], env);
      const done = await switchWal(src);
      const next = await switchWal(src);
      // The state a kill leaves: <done> received in full but still .partial, <next> begun.
      copyFileSync(join(walDir, done), join(spool, `${done}.partial`));
      copyFileSync(join(walDir, next), join(spool, `${next}.partial`));
      const rx = startReceiver(['--repo', repo, '--stanza', 'main', '-D', spool], env);
      await until(`${next} in the repository`, () => archivedOnDisk(repo, 'main').some((f) => f.name === next), rx.log);
      assert.equal(await rx.stop(), 0, rx.log());
      assert.ok(archivedOnDisk(repo, 'main').some((f) => f.name === done), `${done} was never stored: a permanent gap\n${rx.log()}`);
      const out = src.tempDir('rwc-lost-fetched');
      const r = await runPgpitr(['archive-get', '--repo', repo, '--stanza', 'main', done, join(out, done)]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(join(out, done)).equals(readFileSync(join(walDir, done))));
    });

    await t.test('directory mode, --synchronous: kill -9 at random moments under load loses nothing', async (st) => {
      const dir = src.tempDir('rwc-kills');
      await newSlotHere(src, 'rwc_kills');
      const { first, windows } = await killRepeatedly(src, ['-D', dir, '-S', 'rwc_kills', '--synchronous'], dir, 'rwc_kills', 8, () => new Set());
      st.diagnostic(`${windows} of 4 kills came while two .partial files existed`);
      const complete = readdirSync(dir).filter((n) => SEGMENT.test(n)).sort();
      const last = segNoOf(complete[complete.length - 1]!);
      const missing: string[] = [];
      for (let s = first; s <= last; s++) if (!complete.includes(nameOf(s))) missing.push(nameOf(s));
      assert.deepEqual(missing, [], `segments missing between ${nameOf(first)} and ${nameOf(last)}; files: ${readdirSync(dir).sort().join(' ')}`);
      for (const n of complete.filter((n) => segNoOf(n) >= first)) assert.ok(readFileSync(join(dir, n)).equals(readFileSync(join(walDir, n))), `${n} differs from the server's`);
      if (version === 15) {
        const r = await runCommand(join(clientToolDir(), 'pg_waldump'), ['-p', dir, '--stats', nameOf(first), complete[complete.length - 1]!]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Total/);
      }
      await pgpitrOk(['receive-wal', '--drop-slot', '-S', 'rwc_kills'], env);
    });

    await t.test('directory mode, -Z gzip --synchronous: kill -9 at random moments under load loses nothing', async (st) => {
      const dir = src.tempDir('rwc-kills-gz');
      await newSlotHere(src, 'rwc_kills_gz');
      const { first, windows } = await killRepeatedly(src, ['-D', dir, '-S', 'rwc_kills_gz', '--synchronous', '-Z', 'gzip:1'], dir, 'rwc_kills_gz', 4, () => new Set(), '.gz');
      st.diagnostic(`${windows} of 2 kills came while two .partial files existed`);
      const complete = readdirSync(dir).filter((n) => /^[0-9A-F]{24}\.gz$/.test(n)).map((n) => n.slice(0, 24)).sort();
      const last = segNoOf(complete[complete.length - 1]!);
      const missing: string[] = [];
      for (let s = first; s <= last; s++) if (!complete.includes(nameOf(s))) missing.push(nameOf(s));
      assert.deepEqual(missing, [], `segments missing between ${nameOf(first)} and ${nameOf(last)}; files: ${readdirSync(dir).sort().join(' ')}`);
      for (const n of complete.filter((n) => segNoOf(n) >= first)) assert.ok(gunzipSync(readFileSync(join(dir, `${n}.gz`))).equals(readFileSync(join(walDir, n))), `${n}.gz differs from the server's ${n}`);
      await pgpitrOk(['receive-wal', '--drop-slot', '-S', 'rwc_kills_gz'], env);
    });

    await t.test('repository mode: kill -9 at random moments under load leaves no gap in the archive', async (st) => {
      const repo = src.tempDir('rwc-kills-repo');
      const spool = src.tempDir('rwc-kills-spool');
      await pgpitrOk(['stanza-create', '--repo', repo, '--stanza', 'main'], env);
      await newSlotHere(src, 'rwc_kills_repo');
      const archived = () => new Set(archivedOnDisk(repo, 'main').map((f) => f.name));
      const { first, windows } = await killRepeatedly(src, ['--repo', repo, '--stanza', 'main', '-D', spool, '-S', 'rwc_kills_repo'], spool, 'rwc_kills_repo', 6, archived);
      st.diagnostic(`${windows} of 3 kills came while two .partial files existed`);
      const stored = [...archived()].filter((n) => SEGMENT.test(n)).sort();
      const last = segNoOf(stored[stored.length - 1]!);
      const missing: string[] = [];
      for (let s = first; s <= last; s++) if (!stored.includes(nameOf(s))) missing.push(nameOf(s));
      assert.deepEqual(missing, [], `segments missing from the archive between ${nameOf(first)} and ${nameOf(last)}`);
      const info = JSON.parse((await runPgpitr(['info', '--repo', repo, '--output', 'json'])).stdout) as { stanzas: { archive: { timelines: { gaps: unknown[] }[] } }[] };
      assert.deepEqual(info.stanzas[0]!.archive.timelines[0]!.gaps, []);
      const out = src.tempDir('rwc-kills-fetched');
      // Two archive-gets at a time (~30 segments; each a process, half of its time starting up).
      await eachOf(stored.filter((n) => segNoOf(n) >= first), 2, async (n) => {
        const r = await runPgpitr(['archive-get', '--repo', repo, '--stanza', 'main', n, join(out, n)]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(readFileSync(join(out, n)).equals(readFileSync(join(walDir, n))), `${n} differs after archive-get`);
      });
      if (version === 15) {
        const r = await runCommand(join(clientToolDir(), 'pg_waldump'), ['-p', out, '--stats', nameOf(first), stored[stored.length - 1]!]);
        assert.equal(r.code, 0, r.stderr);
      }
      await pgpitrOk(['receive-wal', '--drop-slot', '-S', 'rwc_kills_repo'], env);
    });
  });
}
