// The asynchronous pusher with several repositories: the settle rules
// (archiving/repo-settle.ts) as pure functions, then the pusher itself on a
// made-up pg_wal with two posix repositories, one of which goes away: the
// other keeps getting every segment, past the queue limit only the missing
// one drops (its drop record kept in the spool until it returns), a .history
// file it lacks does not hold the archiver past the limit (a copy waits in the
// spool for it), and a repository that returns before the limit catches up.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planDrops, serverMarker } from '../../src/archiving/repo-settle.js';
import type { LabelledState, RepoFileState } from '../../src/archiving/repo-settle.js';
import { runPusher } from '../../src/archiving/pusher.js';
import { PushSpool } from '../../src/archiving/spool.js';
import { createStanza } from '../../src/repo/stanza.js';
import type { StanzaInfo } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { archivedOnDisk } from '../helpers/archiving.js';
import { walSegment } from '../helpers/wal-segment.js';

const st = (name: string, file: RepoFileState): LabelledState => ({ name, title: `${name} (/r/${name})`, file });

test('server marker: settled only when every repository settled or failed', () => {
  assert.equal(serverMarker([st('repo1', { state: 'stored' }), st('repo2', { state: 'pending' })]), null);
  assert.deepEqual(serverMarker([st('repo1', { state: 'stored' }), st('repo2', { state: 'stored' })]), { kind: 'ok', message: '' });
  // Stored in one, dropped for the other: archive_command succeeds.
  assert.deepEqual(serverMarker([st('repo1', { state: 'stored' }), st('repo2', { state: 'dropped', message: '' })]), { kind: 'ok', message: 'dropped for repo2' });
  // Dropped for all: as with one repository.
  assert.deepEqual(serverMarker([st('repo1', { state: 'dropped', message: '' }), st('repo2', { state: 'dropped', message: '' })]), { kind: 'ok', message: 'dropped' });
  // The first file of a drop carries its loud message, whatever the others did.
  assert.deepEqual(serverMarker([st('repo1', { state: 'stored' }), st('repo2', { state: 'dropped', message: 'repo2: dropped 4' })]), { kind: 'dropped', message: 'repo2: dropped 4' });
  // A failure (every repository answered) fails archive_command, naming the repository, keeping the hint.
  const failed = serverMarker([st('repo1', { state: 'stored' }), st('repo2', { state: 'error', message: 'permission denied\nhint: fix it' })]);
  assert.equal(failed?.kind, 'error');
  assert.equal(failed?.message, 'not archived in repo2 (/r/repo2): permission denied (archived in repo1)\nhint: fix it');
  // And its code, which archive_command's exit code comes from (3 for a store out of reach, as a synchronous push).
  const unreachable = serverMarker([st('repo1', { state: 'stored' }), st('repo2', { state: 'error', message: 'unreachable after 8 attempts\nhint: start it\ncode: ERR_CONNECTION' })]);
  assert.equal(unreachable?.message, 'not archived in repo2 (/r/repo2): unreachable after 8 attempts (archived in repo1)\nhint: start it\ncode: ERR_CONNECTION');
  assert.equal(serverMarker([st('repo1', { state: 'error', message: 'x' }), st('repo2', { state: 'pending' })]), null);
});

test('queue limit: only the repository lacking the files drops them', () => {
  const seg = 16;
  const names = ['A', 'B', 'C', 'D', 'E'];
  // repo2 down: lacks all five; repo1 lacks only E (being stored). Limit: 3 segments.
  const plan = planDrops({ unsettled: names, settled: [new Set(['A', 'B', 'C', 'D']), new Set()], inFlight: [new Set(['E']), new Set()], segmentSize: seg, queueMaxBytes: 3 * seg });
  assert.deepEqual(plan, [[], names]);
  // Within the limit: nothing.
  assert.deepEqual(planDrops({ unsettled: ['A', 'B', 'C'], settled: [new Set(), new Set()], inFlight: [new Set(), new Set()], segmentSize: seg, queueMaxBytes: 3 * seg }), [[], []]);
  // What a repository is storing now is never dropped for it.
  assert.deepEqual(planDrops({ unsettled: names, settled: [new Set(names), new Set()], inFlight: [new Set(), new Set(['A'])], segmentSize: seg, queueMaxBytes: 3 * seg }), [[], ['B', 'C', 'D', 'E']]);
  // One repository: everything unsettled and not in flight (as before several repositories existed).
  assert.deepEqual(planDrops({ unsettled: names, settled: [new Set()], inFlight: [new Set(['A'])], segmentSize: seg, queueMaxBytes: 3 * seg }), [['B', 'C', 'D', 'E']]);
  // Each lags on different files, neither past the limit alone, together past it: both drop what they lack.
  assert.deepEqual(
    planDrops({ unsettled: ['A', 'B', 'C', 'D'], settled: [new Set(['A', 'B']), new Set(['C', 'D'])], inFlight: [new Set(), new Set()], segmentSize: seg, queueMaxBytes: 3 * seg }),
    [['C', 'D'], ['A', 'B']],
  );
  // A repository down with stores in flight (not droppable, retried for seconds) and one that keeps up:
  // its in-flight files do not make the one that keeps up drop the file it has not taken yet.
  assert.deepEqual(
    planDrops({
      unsettled: ['A', 'B', 'C', 'D', 'E', 'F'],
      settled: [new Set(['A', 'B', 'C', 'D']), new Set()],
      inFlight: [new Set(['E']), new Set(['A', 'B', 'C', 'D'])],
      segmentSize: seg,
      queueMaxBytes: 4 * seg,
    }),
    [[], ['E', 'F']],
  );
});

const SEG = 1024 * 1024;
const SYSID = '7441234567890123456';

function segment(segNo: number): Buffer {
  return walSegment({ segNo, segmentSize: SEG, systemId: SYSID, mark: `segment ${segNo}` });
}

/** The pusher's settings both pusher tests share: lz4, 2 at once, a limit of 3 segments, quick turns. */
const PUSHER_SETTINGS = {
  push: { compression: 'lz4' },
  processMax: 2,
  queueMaxBytes: 3 * SEG,
  idleExitMs: 60_000,
  maxLifetimeMs: 600_000,
  pollMs: 10,
  retryMs: 300,
} as const;

/** A made-up pg_wal and two empty posix repositories under root. */
function twoRepositories(root: string) {
  const pgWal = join(root, 'pg_wal');
  mkdirSync(join(pgWal, 'archive_status'), { recursive: true });
  const paths = [join(root, 'repo1'), join(root, 'repo2')];
  const repos = paths.map((p, i) => {
    mkdirSync(p);
    return { index: i + 1, repo: repositoryOn(new PosixStorage(p), p) };
  });
  return { pgWal, paths, repos };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs a pusher with PUSHER_SETTINGS (each repository's stanza record `stanza`) until `cond`, then stops it; its log. */
async function runPusherUntil(o: { repos: Parameters<typeof runPusher>[0]['repos']; stanza: StanzaInfo; pgWal: string; spool: PushSpool }, cond: () => boolean, what: string): Promise<string[]> {
  const stop = new AbortController();
  const log: string[] = [];
  const pusher = runPusher({ ...o, repoStanzas: o.repos.map(() => o.stanza), ...PUSHER_SETTINGS, log: (l) => log.push(l), signal: stop.signal });
  try {
    await until(what, cond);
  } finally {
    stop.abort();
    await pusher;
  }
  return log;
}

test('pusher with two repositories: one down never stops the other; drops only for it; catch-up when it returns', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-mrp-'));
  try {
    const { pgWal, paths, repos } = twoRepositories(root);
    let stanza = null as unknown as Awaited<ReturnType<typeof createStanza>>['info'];
    for (const r of repos) stanza = (await createStanza(r.repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info;
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const log: string[] = [];
    const stop = new AbortController();
    let segNo = 1;
    const add = () => {
      const name = segmentFileName(1, BigInt(segNo), SEG);
      writeFileSync(join(pgWal, name), segment(segNo++));
      writeFileSync(join(pgWal, 'archive_status', `${name}.ready`), '');
      return name;
    };
    // PostgreSQL's side: archive_command succeeds for a file settled for every repository
    // (what it answered from is kept: the pusher removes markers of files no longer ready).
    const answered = new Map<string, { kind: string; message: string }>();
    const failures = new Map<string, string>();
    const archiver = setInterval(() => {
      for (const [name, kind] of spool.list()) {
        const marker = spool.read(name);
        if (kind === 'error') {
          if (marker) failures.set(name, marker.message);
          continue;
        }
        const ready = join(pgWal, 'archive_status', `${name}.ready`);
        if (!existsSync(ready)) continue;
        if (marker) answered.set(name, marker);
        renameSync(ready, join(pgWal, 'archive_status', `${name}.done`));
      }
    }, 20);
    const done = (name: string) => existsSync(join(pgWal, 'archive_status', `${name}.done`));
    const has = (i: number, name: string) => archivedOnDisk(paths[i]!, 'main').some((f) => f.name === name);
    const pusher = runPusher({
      repos,
      stanza,
      repoStanzas: [stanza, stanza],
      pgWal,
      spool,
      ...PUSHER_SETTINGS,
      log: (line) => log.push(line),
      signal: stop.signal,
    });
    try {
      const first = [add(), add()];
      await until('both repositories have the first segments', () => first.every((n) => done(n) && has(0, n) && has(1, n)));
      assert.deepEqual(answered.get(first[0]!), { kind: 'ok', message: '' });

      // repo2 goes away: catch-up when it returns before the limit.
      renameSync(paths[1]!, `${paths[1]}.away`);
      writeFileSync(paths[1]!, 'not a directory');
      const during = [add(), add()];
      await until('repo1 has them', () => during.every((n) => has(0, n)));
      await until('the server hears of repo2', () => during.every((n) => failures.has(n)));
      assert.match(failures.get(during[0]!)!, /^not archived in repo2 \(.*repo2\): .* \(archived in repo1\)/);
      assert.ok(!done(during[0]!));
      rmSync(paths[1]!);
      renameSync(`${paths[1]}.away`, paths[1]!);
      await until('repo2 catches up', () => during.every((n) => done(n) && has(1, n)));

      // repo2 away past the limit (3 segments): dropped for repo2 only, recorded once it returns.
      renameSync(paths[1]!, `${paths[1]}.away`);
      writeFileSync(paths[1]!, 'not a directory');
      // A timeline history file repo2 cannot take either: past the limit it must not hold the archiver.
      writeFileSync(join(pgWal, '00000002.history'), '1\t0/3000000\tno recovery target specified\n');
      writeFileSync(join(pgWal, 'archive_status', '00000002.history.ready'), '');
      await until('repo1 has the history file', () => has(0, '00000002.history'));
      const piled: string[] = [];
      // One at a time, as a server writes them: repo1 keeps up.
      for (let i = 0; i < 5; i++) {
        const n = add();
        piled.push(n);
        await until(`repo1 has ${n}`, () => has(0, n));
      }
      // The fourth passes the limit: the four are settled (dropped for repo2); the fifth waits within it.
      const dropped = piled.slice(0, 4);
      await until('the piled segments are settled', () => dropped.every(done));
      assert.ok(!done(piled[4]!));
      assert.ok(done('00000002.history'), 'the history file is let go past the limit');
      assert.ok(existsSync(join(spool.dir, 'repo2', 'owed', '00000002.history')), 'a copy waits in the spool for repo2');
      for (const n of piled) assert.ok(has(0, n), `${n} must be in repo1`);
      const heads = piled.filter((n) => answered.get(n)?.kind === 'dropped');
      assert.ok(heads.length >= 1, 'the first dropped segment reaches archive_command');
      assert.match(answered.get(heads[0]!)!.message, /^repo2 \(.*\): archive-push queue of \d+ MiB exceeds archive-push-queue-max \(3 MiB\): dropped (\d+ WAL segment\(s\) of [0-9A-F]{24} to [0-9A-F]{24}|WAL segment [0-9A-F]{24}) WITHOUT ARCHIVING THEM IN REPO2/);
      // The rest: stored in repo1 (before the drop: settled for the server there and then) or dropped for repo2.
      for (const n of dropped.filter((x) => !heads.includes(x))) assert.equal(answered.get(n)?.message, 'dropped for repo2', n);
      assert.ok(readdirSync(join(spool.dir, 'repo2', 'drops')).some((f) => f.endsWith('.json')), 'the drop record waits in the spool');
      assert.ok(!existsSync(join(spool.dir, 'repo1', 'drops')) || readdirSync(join(spool.dir, 'repo1', 'drops')).length === 0, 'nothing dropped for repo1');
      assert.ok(log.some((l) => /ERROR: repo2 .*WITHOUT ARCHIVING THEM IN REPO2/.test(l)), log.join('\n'));
      rmSync(paths[1]!);
      renameSync(`${paths[1]}.away`, paths[1]!);
      const after = add();
      await until('repo2 takes files again', () => done(after) && has(1, after) && done(piled[4]!) && has(1, piled[4]!));
      for (const n of dropped) assert.ok(!has(1, n), `${n} was dropped for repo2`);
      await until('repo2 gets the history file kept for it', () => has(1, '00000002.history') && readdirSync(join(spool.dir, 'repo2', 'owed')).length === 0);
      const drops = readdirSync(join(paths[1]!, 'main', 'archive-drops'));
      assert.equal(drops.length, heads.length);
      assert.ok(!existsSync(join(paths[0]!, 'main', 'archive-drops')) || readdirSync(join(paths[0]!, 'main', 'archive-drops')).length === 0);
      assert.deepEqual(readdirSync(join(spool.dir, 'repo2', 'drops')).filter((f) => f.endsWith('.json')), []);
    } finally {
      clearInterval(archiver);
      stop.abort();
      await pusher;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the pusher starts with the first repository that answers; one still retrying is read again later', async () => {
  const { stanzasAtStart } = await import('../../src/archiving/stanzas-at-start.js');
  const info = { stanza: 'main' } as unknown as StanzaInfo;
  const never = new Promise<StanzaInfo>(() => {});
  const t0 = Date.now();
  const { known, each } = await stanzasAtStart([never, Promise.resolve(info), Promise.reject(new Error('refused'))]);
  assert.equal(known, info);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(each[0], null);
  assert.deepEqual(each[1], { value: info });
  // The failure that came before the first answer is known, with its error.
  assert.match(String((each[2] as { error: Error }).error.message), /refused/);
  // None answers: the first repository's error.
  await assert.rejects(stanzasAtStart([Promise.reject(new Error('repo1 down')), Promise.reject(new Error('repo2 down'))]), /repo1 down/);
});

test("a repository holding another cluster's stanza that answered first refuses the segments; the right one still gets them", async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-mrp-'));
  try {
    const { pgWal, paths, repos } = twoRepositories(root);
    const right = (await createStanza(repos[0]!.repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info;
    const wrong = (await createStanza(repos[1]!.repo, { stanza: 'main', system_identifier: '7441234567890999999', pg_major: 16, wal_segment_size: SEG })).info;
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const stop = new AbortController();
    const name = segmentFileName(1, 1n, SEG);
    writeFileSync(join(pgWal, name), segment(1));
    writeFileSync(join(pgWal, 'archive_status', `${name}.ready`), '');
    const pusher = runPusher({
      repos,
      stanza: wrong, // repo2 answered first (stanzas-at-start.ts)
      repoStanzas: [right, wrong],
      pgWal,
      spool,
      ...PUSHER_SETTINGS,
      log: () => {},
      signal: stop.signal,
    });
    try {
      const has = (i: number) => archivedOnDisk(paths[i]!, 'main').some((f) => f.name === name);
      await until('repo1 has the segment', () => has(0));
      await until('the server hears of repo2', () => spool.list().get(name) === 'error');
      assert.match(spool.read(name)!.message, /^not archived in repo2 \(.*\): WAL segment ".*" belongs to database system 7441234567890123456, stanza "main" is for system 7441234567890999999 .*\(archived in repo1\)/s);
      assert.ok(!has(1));
    } finally {
      stop.abort();
      await pusher;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("past the queue limit with another cluster's stanza: the WAL is dropped, but no drop record goes into that stanza", async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-mrp-'));
  try {
    const { pgWal, paths, repos } = twoRepositories(root);
    const wrong = (await createStanza(repos[0]!.repo, { stanza: 'main', system_identifier: '7441234567890999999', pg_major: 16, wal_segment_size: SEG })).info;
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const names: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const name = segmentFileName(1, BigInt(i), SEG);
      names.push(name);
      writeFileSync(join(pgWal, name), segment(i));
      writeFileSync(join(pgWal, 'archive_status', `${name}.ready`), '');
    }
    const settledAll = () => names.slice(0, 4).every((n) => ['ok', 'dropped'].includes(spool.list().get(n) ?? ''));
    const log = await runPusherUntil({ repos: [repos[0]!], stanza: wrong, pgWal, spool }, () => settledAll() && spool.pendingDrops().length === 0, 'the drop settled and its record handled');
    assert.ok(log.some((l) => /WITHOUT ARCHIVING THEM/.test(l)), log.join('\n'));
    assert.ok(log.some((l) => /is of database system 7441234567890123456, .*stanza "main" of system 7441234567890999999: not recorded there/.test(l)), log.join('\n'));
    assert.ok(!existsSync(join(paths[0]!, 'main', 'archive-drops')) || readdirSync(join(paths[0]!, 'main', 'archive-drops')).length === 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('markers stand for the repositories they were written for, and for the file of that name they were written after', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-mrp-'));
  try {
    const { pgWal, paths, repos } = twoRepositories(root);
    let stanza = null as unknown as StanzaInfo;
    for (const r of repos) stanza = (await createStanza(r.repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info;
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const ready = (n: number) => {
      const name = segmentFileName(1, BigInt(n), SEG);
      writeFileSync(join(pgWal, name), segment(n));
      writeFileSync(join(pgWal, 'archive_status', `${name}.ready`), '');
      return name;
    };
    const has = (i: number, name: string) => archivedOnDisk(paths[i]!, 'main').some((f) => f.name === name);
    const run = (which: typeof repos, until_: () => boolean, what: string) => runPusherUntil({ repos: which, stanza, pgWal, spool }, until_, what);
    // repo1 alone stores a segment (still ready: the server has not been told yet).
    const a = ready(1);
    await run([repos[0]!], () => spool.list().get(a) === 'ok', 'repo1 alone stores the first segment');
    assert.ok(has(0, a) && !has(1, a));
    // repo2 added: its pusher does not take repo1's marker for "in every repository".
    const log = await run(repos, () => has(1, a) && spool.list().get(a) === 'ok', 'repo2 gets the segment repo1 alone had');
    assert.ok(log.some((l) => /the repositories changed/.test(l)), log.join('\n'));
    // A marker older than its file (a data directory rolled back writes the name again): not an answer.
    const b = ready(2);
    spool.write(b, 'ok');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(spool.dir, `${b}.ok`), old, old);
    for (const dir of ['repo1', 'repo2']) {
      writeFileSync(join(spool.dir, dir, `${b}.ok`), '');
      utimesSync(join(spool.dir, dir, `${b}.ok`), old, old);
    }
    assert.equal(spool.read(b, join(pgWal, b)), null, 'archive_command does not answer from it');
    const again = await run(repos, () => has(0, b) && has(1, b), 'the pusher stores the file its outdated markers stood for');
    assert.ok(again.some((l) => new RegExp(`forgot the marker of ${b}`).test(l)), again.join('\n'));
    // repo1 taken out of the configuration while repo2's spool still holds what repo2 is owed (a drop
    // record, a .history copy): repo2 alone adopts them, and stores the copy.
    const history = '00000002.history';
    writeFileSync(join(pgWal, history), '1\t0/3000000\tno recovery target specified\n');
    const sub = spool.forRepository(2);
    sub.saveOwed(history, join(pgWal, history));
    sub.savePendingDrop('20261204-000000-1', { first: b, last: b, count: 1, queued_bytes: SEG, queue_max_bytes: 3 * SEG, host: 'h', pg_wal: pgWal, at: new Date().toISOString() });
    const drops = () => (existsSync(join(paths[1]!, 'main', 'archive-drops')) ? readdirSync(join(paths[1]!, 'main', 'archive-drops')) : []);
    const alone = await run([{ ...repos[1]!, index: 1 }], () => has(1, history), 'repo2, alone, stores the .history file it was owed');
    assert.equal(drops().length, 1, 'and the drop record, by the time the pusher stops');
    assert.ok(alone.some((l) => /kept in the spool while it could not take it/.test(l)), alone.join('\n'));
    assert.deepEqual(sub.owed().size, 0);
    assert.deepEqual(sub.pendingDrops(), []);
    assert.deepEqual(spool.pendingDrops(), []);
    // Back to two repositories while the single one's spool holds a copy it is owed: each of them
    // gets it (neither had it), not only the one whose spool it was.
    const history3 = '00000003.history';
    writeFileSync(join(pgWal, history3), '2\t0/4000000\tno recovery target specified\n');
    spool.saveOwed(history3, join(pgWal, history3));
    await run(repos, () => has(0, history3) && has(1, history3), 'both repositories store the copy the single one was owed');
    assert.equal(spool.owed().size, 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("what a repository's spool kept for it follows its location: renumbered, taken out (kept aside, not given to the repository taking its number), back", async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-mrp-'));
  try {
    const { pgWal, paths, repos } = twoRepositories(root);
    const third = join(root, 'repo3');
    mkdirSync(third);
    const [a, b, c] = [repos[0]!.repo, repos[1]!.repo, repositoryOn(new PosixStorage(third), third)];
    let stanza = null as unknown as StanzaInfo;
    for (const r of [a, b, c]) stanza = (await createStanza(r, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info;
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const seg = segmentFileName(1, 1n, SEG);
    writeFileSync(join(pgWal, seg), segment(1));
    writeFileSync(join(pgWal, 'archive_status', `${seg}.ready`), '');
    const files = (path: string, dir: string) => (existsSync(join(path, 'main', dir)) ? readdirSync(join(path, 'main', dir)) : []);
    const has = (path: string, name: string) => archivedOnDisk(path, 'main').some((f) => f.name === name);
    const run = (which: { index: number; repo: typeof a }[], until_: () => boolean, what: string) => runPusherUntil({ repos: which, stanza, pgWal, spool }, until_, what);
    const history = (tli: number) => {
      const name = `${String(tli).padStart(8, '0')}.history`;
      writeFileSync(join(pgWal, name), `${tli - 1}\t0/3000000\tno recovery target specified\n`);
      return name;
    };
    const drop = { first: seg, last: seg, count: 1, queued_bytes: SEG, queue_max_bytes: 3 * SEG, host: 'h', pg_wal: pgWal, at: new Date().toISOString() };
    await run([{ index: 1, repo: a }, { index: 2, repo: b }], () => has(paths[0]!, seg) && has(paths[1]!, seg), 'A as repo1 and B as repo2 store the segment');
    // A (repo1) is owed a .history file, B (repo2) a drop record; then they swap numbers.
    const h2 = history(2);
    spool.forRepository(1).saveOwed(h2, join(pgWal, h2));
    spool.forRepository(2).savePendingDrop('20261205-000000-1', drop);
    await run([{ index: 1, repo: b }, { index: 2, repo: a }], () => has(paths[0]!, h2) && files(paths[1]!, 'archive-drops').length === 1, 'each gets what it was owed under its old number');
    assert.ok(!has(paths[1]!, h2), 'B was not owed the .history file');
    assert.deepEqual(files(paths[0]!, 'archive-drops'), [], 'nor A the drop record');
    // A (now repo2) is owed another; it is taken out and C takes its number: C does not get it.
    const h3 = history(3);
    spool.forRepository(2).saveOwed(h3, join(pgWal, h3));
    const out = await run([{ index: 1, repo: b }, { index: 2, repo: c }], () => has(third, seg) && spool.forRepository(2).owed().size === 0, 'C, new as repo2, gets the segment');
    assert.ok(!has(third, h3), 'C was not owed what A was');
    assert.ok(out.some((l) => /kept what repo2 .* aside/.test(l)), out.join('\n'));
    assert.deepEqual(spool.parked().map((p) => p.location), [a.location]);
    // A configured again, alone: it gets its copy, and nothing stays parked (not even what a write
    // killed half-way left there).
    const parkedDir = spool.parked()[0]!.spool.dir;
    writeFileSync(join(parkedDir, 'owed', `${h3}.tmp-99999`), 'half');
    writeFileSync(join(parkedDir, 'location.tmp-99999'), 'half');
    await run([{ index: 1, repo: a }], () => has(paths[0]!, h3), 'A, back, gets what was kept for it');
    assert.deepEqual(spool.parked(), []);
    assert.equal(existsSync(parkedDir), false);
    // One repository, replaced while the stanza's spool holds what it is owed, C alone instead (the
    // same repository moved, maybe): C gets it, and a copy waits for A, which gets it once back.
    const h4 = history(4);
    spool.saveOwed(h4, join(pgWal, h4));
    const swapped = await run([{ index: 1, repo: c }], () => has(third, h4), 'C alone gets the copy');
    assert.ok(swapped.some((l) => /kept a copy of what repo1 .* owed/.test(l)), swapped.join('\n'));
    assert.ok(!has(paths[0]!, h4));
    await run([{ index: 1, repo: a }], () => has(paths[0]!, h4), 'A, back alone, gets it');
    assert.deepEqual(spool.parked(), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/**
 * One posix repository (the first of twoRepositories) with stanza "main", a spool, and in pg_wal a
 * .history file ready before 5 segments of timeline 2: past PUSHER_SETTINGS's limit of 3.
 */
async function historyPastTheLimit(root: string) {
  const { pgWal, paths, repos } = twoRepositories(root);
  const one = [repos[0]!];
  const stanza = (await createStanza(one[0]!.repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info;
  const spool = PushSpool.open(join(root, 'spool'), 'main');
  const history = '00000002.history';
  writeFileSync(join(pgWal, history), '1\t0/3000000\tno recovery target specified\n');
  writeFileSync(join(pgWal, 'archive_status', `${history}.ready`), '');
  for (let segNo = 1; segNo <= 5; segNo++) {
    const name = segmentFileName(2, BigInt(segNo), SEG);
    writeFileSync(join(pgWal, name), segment(segNo));
    writeFileSync(join(pgWal, 'archive_status', `${name}.ready`), '');
  }
  return { pgWal, paths, one, stanza, spool, history };
}

test('one repository, down, past the queue limit: a .history file ready before the segments does not hold the archiver (a copy waits in the spool), and reaches the repository when it returns', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-onerepo-'));
  try {
    const { pgWal, paths, one, stanza, spool, history } = await historyPastTheLimit(root);
    const stop = new AbortController();
    const log: string[] = [];
    // The repository goes away before anything is stored.
    renameSync(paths[0]!, `${paths[0]}.away`);
    writeFileSync(paths[0]!, 'not a directory');
    const pusher = runPusher({ repos: one, stanza, repoStanzas: [stanza], pgWal, spool, ...PUSHER_SETTINGS, log: (l) => log.push(l), signal: stop.signal });
    try {
      await until('the history file is let go, kept in the spool', () => spool.list().get(history) === 'ok', 10_000);
      assert.equal(spool.read(history)?.message, 'owed');
      assert.ok(existsSync(join(spool.dir, 'owed', history)));
      // The server archives it (archive_command answered 0): it is no longer ready.
      renameSync(join(pgWal, 'archive_status', `${history}.ready`), join(pgWal, 'archive_status', `${history}.done`));
      rmSync(paths[0]!);
      renameSync(`${paths[0]}.away`, paths[0]!);
      await until('the repository gets the history file kept for it', () => archivedOnDisk(paths[0]!, 'main').some((f) => f.name === history) && !existsSync(join(spool.dir, 'owed', history)));
    } finally {
      stop.abort();
      await pusher;
    }
    assert.ok(log.some((l) => /lacks 00000002\.history while the queue is past archive-push-queue-max/.test(l)), log.join('\n'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a marker is dated from when its file was read: a file rewritten while it was stored finds it outdated', () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-marker-time-'));
  try {
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const wal = join(root, '000000010000000000000007');
    const readAt = Date.now() - 5_000;
    // The file was read 5 s ago, then rewritten (a data directory rolled back, the name filled again)
    // while the store went on; the store ends now.
    writeFileSync(wal, 'new content');
    spool.write('000000010000000000000007', 'ok', '', readAt);
    assert.ok(Math.abs(spool.markerTime('000000010000000000000007')! - readAt) < 1000);
    assert.equal(spool.read('000000010000000000000007', wal), null, 'not an answer for the file as it is now (and removed)');
    assert.equal(spool.markerTime('000000010000000000000007'), null);
    // Written undated (now), it would have looked newer than the rewrite.
    spool.write('000000010000000000000007', 'ok');
    assert.equal(spool.read('000000010000000000000007', wal)?.kind, 'ok');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('one repository taking files, past the queue limit: a .history file is stored there, never let go as owed while nowhere but in the spool', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-onerepo-up-'));
  try {
    const { pgWal, paths, one, stanza, spool, history } = await historyPastTheLimit(root);
    const stop = new AbortController();
    const log: string[] = [];
    const pusher = runPusher({ repos: one, stanza, repoStanzas: [stanza], pgWal, spool, ...PUSHER_SETTINGS, log: (l) => log.push(l), signal: stop.signal });
    try {
      await until('the history file is settled', () => spool.list().get(history) === 'ok', 10_000);
      assert.equal(spool.read(history)?.message, '', log.join('\n'));
      assert.ok(archivedOnDisk(paths[0]!, 'main').some((f) => f.name === history), 'stored in the repository before the server is answered');
      assert.ok(!existsSync(join(spool.dir, 'owed', history)));
    } finally {
      stop.abort();
      await pusher;
    }
    assert.ok(!log.some((l) => /lacks 00000002\.history/.test(l)), log.join('\n'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/**
 * A pusher with one repository on a made-up data directory (PG_VERSION beside pg_wal; with
 * `running`, a postmaster.pid naming this process) whose server left segments 1..`count` ready.
 */
async function pusherOfServer(root: string, count: number, o: { running: boolean; maxLifetimeMs?: number }) {
  const { pgWal, paths, repos } = twoRepositories(root);
  const one = [repos[0]!];
  const stanza = (await createStanza(one[0]!.repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info;
  writeFileSync(join(root, 'PG_VERSION'), '16\n');
  if (o.running) writeFileSync(join(root, 'postmaster.pid'), `${process.pid}\n${root}\n${Math.floor(Date.now() / 1000)}\n`);
  const names = Array.from({ length: count }, (_, i) => {
    const name = segmentFileName(1, BigInt(i + 1), SEG);
    writeFileSync(join(pgWal, name), segment(i + 1));
    writeFileSync(join(pgWal, 'archive_status', `${name}.ready`), '');
    return name;
  });
  const log: string[] = [];
  const stop = new AbortController();
  const start = () => {
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const run = runPusher({ repos: one, stanza, repoStanzas: [stanza], pgWal, spool, ...PUSHER_SETTINGS, ...(o.maxLifetimeMs ? { maxLifetimeMs: o.maxLifetimeMs } : {}), log: (l) => log.push(l), signal: stop.signal });
    const state = { returned: false, run };
    void run.then(() => (state.returned = true));
    return state;
  };
  const stored = () => names.every((n) => archivedOnDisk(paths[0]!, 'main').some((f) => f.name === n));
  return { pgWal, repoPath: paths[0]!, names, log, stop, start, stored };
}

test("a pusher whose server stopped stores what it left ready, then leaves at once (its .ready files stay: only the server renames them)", async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-gone-'));
  try {
    const p = await pusherOfServer(root, 3, { running: true });
    const pusher = p.start();
    try {
      await until('the three segments stored', p.stored);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(pusher.returned, false, 'its server runs: it stays (idle exit a minute away)');
      rmSync(join(root, 'postmaster.pid'));
      await until('the pusher to leave', () => pusher.returned, 5000);
      assert.match(p.log.join('\n'), /pusher stopped: nothing left to archive/);
      assert.ok(p.names.every((n) => existsSync(join(p.pgWal, 'archive_status', `${n}.ready`))));
    } finally {
      p.stop.abort();
      await pusher.run;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a pusher whose server stopped is not retired at its lifetime while what it left is not archived (black-box run W3)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-gone-life-'));
  try {
    const p = await pusherOfServer(root, 2, { running: false, maxLifetimeMs: 300 });
    renameSync(p.repoPath, `${p.repoPath}.away`); // the repository out of reach
    const pusher = p.start();
    try {
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(pusher.returned, false, 'past its lifetime, its server stopped, files not archived: it stays');
      assert.match(p.log.join('\n'), /its server has stopped with 2 file\(s\) not archived, which nothing else stores: trying on/);
      renameSync(`${p.repoPath}.away`, p.repoPath);
      await until('the pusher to store them and leave', () => pusher.returned, 10_000);
      assert.ok(p.stored());
    } finally {
      p.stop.abort();
      await pusher.run;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
