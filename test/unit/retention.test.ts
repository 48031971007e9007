// Retention on backups at fixed, made-up times: exactly the backups and the WAL
// the policy promises.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { decideRetention, parseRetentionWindow } from '../../src/repo/retention.js';
import type { RetentionBackup } from '../../src/repo/retention.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-10T00:00:00Z');
// One complete backup a day, at day 1..9 (ids D1..D9), segment 10*d at its start.
const daily: RetentionBackup[] = Array.from({ length: 9 }, (_, i) => ({
  id: `D${i + 1}`,
  state: 'complete' as const,
  stopTimeMs: Date.parse('2026-12-01T00:00:00Z') + i * DAY,
  startSegNo: BigInt(10 * (i + 1)),
  pinned: false,
}));
const ids = (l: { id: string }[]) => l.map((x) => x.id).sort();

test('retention-full keeps the N newest complete backups and the WAL from the oldest of them', () => {
  const d = decideRetention(daily, { full: 3 }, NOW);
  assert.deepEqual(ids(d.keep), ['D7', 'D8', 'D9']);
  assert.equal(d.expire.length, 6);
  assert.equal(d.walKeepFromSegNo, 70n);
});

test('retention-window keeps what ended in the window and the newest backup before it', () => {
  // Window of 3 days: from 2026-12-07 00:00; D7 ended exactly then (kept), D6 is the one before.
  const d = decideRetention(daily, { windowMs: 3 * DAY }, NOW);
  assert.deepEqual(ids(d.keep), ['D6', 'D7', 'D8', 'D9']);
  assert.equal(d.walKeepFromSegNo, 60n);
  // A window after the newest backup still keeps the newest backup.
  assert.deepEqual(ids(decideRetention(daily, { windowMs: 12 * 3_600_000 }, NOW).keep), ['D9']);
});

test('pinned and running backups are kept; failed ones go once a newer complete backup exists', () => {
  const list: RetentionBackup[] = [
    ...daily.map((b) => (b.id === 'D2' ? { ...b, pinned: true } : b)),
    { id: 'F1', state: 'failed', stopTimeMs: NOW - 5.5 * DAY, startSegNo: 55n, pinned: false },
    { id: 'F2', state: 'failed', stopTimeMs: NOW - 0.5 * DAY, startSegNo: 95n, pinned: false },
    { id: 'R', state: 'running', stopTimeMs: NOW, startSegNo: 99n, pinned: false },
  ];
  const d = decideRetention(list, { full: 2 }, NOW);
  assert.deepEqual(ids(d.keep), ['D2', 'D8', 'D9', 'F2', 'R']);
  assert.ok(ids(d.expire).includes('F1'));
  // A running backup (an expire beside it: a dry run, or a lock that cannot be enforced): where its
  // WAL starts is not recorded yet, so no WAL goes.
  assert.equal(d.walKeepFromSegNo, null);
  assert.match(d.walKeptFor?.why ?? '', /still running \(or its process, on another host, cannot be looked at\): where its WAL starts is not recorded until it completes, so no WAL is removed before it does, or .* at the latest/);
  // A day after its start (a dead run of another host reads as running for ever where the lock is not enforced): no longer.
  const later = decideRetention(list, { full: 2 }, NOW + 25 * 3600_000);
  assert.equal(later.walKeepFromSegNo, 20n);
  // Without it, the pinned backup holds the WAL from its own start, and is named as what holds it.
  const done = decideRetention(list.filter((b) => b.id !== 'R'), { full: 2 }, NOW);
  assert.equal(done.walKeepFromSegNo, 20n);
  assert.deepEqual(done.walKeptFor, { id: 'D2', why: 'pinned' });
});

test("retention-window after a restore to an earlier point: the newest backup before the window on the newest timeline's history is kept", () => {
  // F1 (timeline 1), F2 (timeline 1, after the point timeline 2 forked from), F3 (timeline 2).
  const at = (d: number) => Date.parse('2026-12-01T00:00:00Z') + d * DAY;
  const list: RetentionBackup[] = [
    { id: 'F1', state: 'complete', stopTimeMs: at(1), startSegNo: 100n, pinned: false, onLatestBranch: true },
    { id: 'F2', state: 'complete', stopTimeMs: at(4.5), startSegNo: 450n, pinned: false, onLatestBranch: false },
    { id: 'F3', state: 'complete', stopTimeMs: at(7), startSegNo: 320n, pinned: false, onLatestBranch: true },
  ];
  const d = decideRetention(list, { windowMs: 2 * DAY }, at(8));
  assert.deepEqual(ids(d.keep), ['F1', 'F2', 'F3']);
  assert.match(d.keep.find((k) => k.id === 'F1')!.why, /newest timeline's history/);
  assert.equal(d.walKeepFromSegNo, 100n);
  // Not known (no later timeline): as before.
  assert.deepEqual(ids(decideRetention(list.map((b) => ({ ...b, onLatestBranch: undefined })), { windowMs: 2 * DAY }, at(8)).keep), ['F2', 'F3']);
});

test('retention-full after a restore to an earlier point keeps the newest backup on the newest timeline\'s history', () => {
  // F1 (timeline 1), F2 (timeline 1, after the point timeline 2 forked from it), no backup of timeline 2 yet.
  const at = (d: number) => Date.parse('2026-12-01T00:00:00Z') + d * DAY;
  const list: RetentionBackup[] = [
    { id: 'F1', state: 'complete', stopTimeMs: at(1), startSegNo: 100n, pinned: false, onLatestBranch: true },
    { id: 'F2', state: 'complete', stopTimeMs: at(4), startSegNo: 400n, pinned: false, onLatestBranch: false },
  ];
  const d = decideRetention(list, { full: 1 }, at(8));
  assert.deepEqual(ids(d.keep), ['F1', 'F2']);
  assert.match(d.keep.find((k) => k.id === 'F1')!.why, /newest timeline's history/);
  assert.equal(d.walKeepFromSegNo, 100n);
  // Once a backup of timeline 2 completes, F1 goes.
  const later = [...list, { id: 'F3', state: 'complete' as const, stopTimeMs: at(9), startSegNo: 500n, pinned: false, onLatestBranch: true }];
  assert.deepEqual(ids(decideRetention(later, { full: 1 }, at(10)).keep), ['F3']);
});

test('a backup dated after the clock (taken while it ran ahead) is kept and not counted: the backups taken now are ordered among themselves', () => {
  const list: RetentionBackup[] = [
    { id: 'X', state: 'complete', stopTimeMs: Date.parse('2030-01-01T00:00:00Z'), startSegNo: 5n, pinned: false },
    { id: 'Y1', state: 'complete', stopTimeMs: NOW - 2 * DAY, startSegNo: 50n, pinned: false },
    { id: 'Y2', state: 'complete', stopTimeMs: NOW - DAY, startSegNo: 60n, pinned: false },
  ];
  const d = decideRetention(list, { full: 1 }, NOW);
  assert.deepEqual(ids(d.keep), ['X', 'Y2']);
  assert.deepEqual(ids(d.expire), ['Y1']);
  assert.match(d.keep.find((k) => k.id === 'X')!.why, /dated after this host's clock/);
});

test('a backup whose record cannot be parsed is kept, whatever is newer', () => {
  const list: RetentionBackup[] = [...daily, { id: 'X', state: 'failed', stopTimeMs: 0, startSegNo: 0n, pinned: false, damaged: true }];
  const d = decideRetention(list, { full: 1 }, NOW);
  assert.deepEqual(ids(d.keep), ['D9', 'X']);
  assert.match(d.walKeptFor!.why, /its record is damaged: where its WAL starts is not known/);
  assert.match(d.keep.find((k) => k.id === 'X')!.why, /record is damaged/);
  assert.equal(d.walKeepFromSegNo, null); // where it starts is not known: every WAL file stays
});

test('both rules: a backup either keeps is kept; no complete backup keeps all WAL', () => {
  assert.deepEqual(ids(decideRetention(daily, { full: 1, windowMs: 2 * DAY }, NOW).keep), ['D7', 'D8', 'D9']);
  const none = decideRetention([{ id: 'F', state: 'failed', stopTimeMs: NOW, startSegNo: 5n, pinned: false }], { full: 1 }, NOW);
  assert.equal(none.walKeepFromSegNo, null);
  assert.deepEqual(ids(none.keep), ['F']);
  assert.throws(() => decideRetention(daily, {}, NOW), /needs a count or a window/);
});

test('retention windows', () => {
  assert.equal(parseRetentionWindow('7d'), 7 * DAY);
  assert.equal(parseRetentionWindow('2w'), 14 * DAY);
  assert.equal(parseRetentionWindow('36h'), 1.5 * DAY);
  assert.throws(() => parseRetentionWindow('7'), /give a number and a unit/);
});

test('diff and incr backups: retention-full counts full backups, and a kept backup keeps what it takes files from', () => {
  // Day 1 full F1, incrs on days 2 and 3 (each from the one before), day 4 full F4, a diff on day 5, an incr of it on day 6.
  const at = (d: number) => Date.parse('2026-12-01T00:00:00Z') + (d - 1) * DAY;
  const b = (id: string, d: number, type: 'full' | 'diff' | 'incr', needs: string[] = []): RetentionBackup => ({ id, state: 'complete', stopTimeMs: at(d), startSegNo: BigInt(10 * d), pinned: false, type, needs });
  const chain: RetentionBackup[] = [b('F1', 1, 'full'), b('I2', 2, 'incr', ['F1']), b('I3', 3, 'incr', ['I2', 'F1']), b('F4', 4, 'full'), b('D5', 5, 'diff', ['F4']), b('I6', 6, 'incr', ['D5', 'F4'])];
  // One full: F4 and the backups after it; F1 goes with its incrs.
  const one = decideRetention(chain, { full: 1 }, NOW);
  assert.deepEqual(ids(one.keep), ['D5', 'F4', 'I6']);
  assert.deepEqual(ids(one.expire), ['F1', 'I2', 'I3']);
  assert.equal(one.walKeepFromSegNo, 40n);
  assert.deepEqual(ids(decideRetention(chain, { full: 2 }, NOW).keep), ['D5', 'F1', 'F4', 'I2', 'I3', 'I6']);
  // A pinned incr keeps what it takes files from: I2, and through it F1.
  const pinnedIncr = chain.map((x) => (x.id === 'I3' ? { ...x, pinned: true } : x));
  const kept = decideRetention(pinnedIncr, { full: 1 }, NOW);
  assert.deepEqual(ids(kept.keep), ['D5', 'F1', 'F4', 'I2', 'I3', 'I6']);
  assert.match(kept.keep.find((k) => k.id === 'F1')!.why, /takes files from it/);
  assert.equal(kept.walKeepFromSegNo, 10n);
});

test('the newest complete backup is kept whatever the policy (the only full backup\'s record damaged)', () => {
  const list: RetentionBackup[] = [
    { id: 'F1', state: 'failed', stopTimeMs: 0, startSegNo: 0n, pinned: false, damaged: true, type: 'full' },
    { id: 'D2', state: 'complete', stopTimeMs: NOW - DAY, startSegNo: 20n, pinned: false, type: 'diff', needs: ['F1'] },
  ];
  const d = decideRetention(list, { full: 1 }, NOW);
  assert.deepEqual(ids(d.keep), ['D2', 'F1']);
  assert.match(d.keep.find((k) => k.id === 'D2')!.why, /newest complete backup/);
});

test('expire --set: the backup and what takes files from it; pinned, running and the last full refused', async () => {
  const { decideSetExpiry } = await import('../../src/repo/retention.js');
  const at = (d: number) => Date.parse('2026-12-01T00:00:00Z') + d * DAY;
  const chain: RetentionBackup[] = [
    { id: 'F1', state: 'complete', stopTimeMs: at(1), startSegNo: 10n, pinned: false, type: 'full' },
    { id: 'D2', state: 'complete', stopTimeMs: at(2), startSegNo: 20n, pinned: false, type: 'diff', needs: ['F1'] },
    { id: 'I3', state: 'complete', stopTimeMs: at(3), startSegNo: 30n, pinned: false, type: 'incr', needs: ['D2', 'F1'] },
    { id: 'F4', state: 'complete', stopTimeMs: at(4), startSegNo: 40n, pinned: false, type: 'full' },
    { id: 'X5', state: 'failed', stopTimeMs: at(5), startSegNo: 50n, pinned: false, type: 'full' },
  ];
  const d = decideSetExpiry(chain, 'D2', 'main');
  assert.deepEqual(ids(d.expire), ['D2', 'I3']);
  assert.match(d.expire.find((e) => e.id === 'I3')!.why, /takes files from backup D2/);
  assert.equal(d.walKeepFromSegNo, 10n); // F1 stays: its WAL too
  const f1 = decideSetExpiry(chain, 'F1', 'main');
  assert.deepEqual(ids(f1.expire), ['D2', 'F1', 'I3']);
  assert.equal(f1.walKeepFromSegNo, 40n);
  assert.deepEqual(ids(decideSetExpiry(chain, 'X5', 'main').expire), ['X5']);
  assert.throws(() => decideSetExpiry(chain, 'nope', 'main'), /backup "nope" does not exist in stanza "main"/);
  assert.throws(() => decideSetExpiry(chain.map((b) => (b.id === 'I3' ? { ...b, pinned: true } : b)), 'F1', 'main'), /backup I3 is pinned \(it takes files from backup F1/);
  assert.throws(() => decideSetExpiry(chain.map((b) => (b.id === 'I3' ? { ...b, state: 'running' as const } : b)), 'D2', 'main'), /backup I3 is still running/);
  // A damaged record that may take files from what goes is not taken along: refused until looked at.
  const damaged: RetentionBackup = { id: 'Y6', state: 'failed', stopTimeMs: 0, startSegNo: 0n, pinned: false, damaged: true, type: 'incr', needs: ['F1', 'D2', 'I3', 'F4'] };
  assert.throws(() => decideSetExpiry([...chain, damaged], 'D2', 'main'), /backup Y6, whose record is damaged, may take files/);
  assert.deepEqual(ids(decideSetExpiry([...chain, damaged], 'Y6', 'main').expire), ['Y6']);
  const oneFull = chain.filter((b) => b.id !== 'F4');
  assert.throws(() => decideSetExpiry(oneFull, 'F1', 'main'), /would leave stanza "main" without a complete full backup/);
  // A restore of F1 promoted before F4 (timeline 2): F4 is on timeline 1's abandoned future, F1 the
  // only backup production can be restored from. Refused; with the history unknown, not.
  const forked = chain.map((b) => ({ ...b, onLatestBranch: b.id !== 'F4' }));
  assert.throws(() => decideSetExpiry(forked, 'F1', 'main'), (e: Error & { hint?: string }) => {
    assert.match(e.message, /expiring backup F1 would leave stanza "main" without a backup its newest timeline can be restored from: F4 is on a branch that timeline left behind/);
    assert.match(e.hint!, /take a new backup first \(pgpitr backup\), then expire F1/);
    return true;
  });
  assert.deepEqual(ids(decideSetExpiry(forked, 'D2', 'main').expire), ['D2', 'I3'], 'F1 stays');
  assert.deepEqual(ids(decideSetExpiry(forked, 'F4', 'main').expire), ['F4']);
  assert.deepEqual(ids(decideSetExpiry(chain, 'F1', 'main').expire), ['D2', 'F1', 'I3'], 'history unknown: F4 may serve');
});
