// The restore plan's rules, on made-up catalogs and archives: which backup,
// which branch, which WAL, and what is refused before anything is written.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { planRestore } from '../../src/restore/plan.js';
import { LatestTimelineDoubt } from '../../src/restore/latest-timeline.js';
import type { PlanBackup } from '../../src/restore/plan.js';
import { parseTargetOptions, parseTargetTime } from '../../src/restore/restore-target.js';
import { branchSpans, parseTimelineHistory, timelineBranch, timelineAt, segmentsAlong } from '../../src/postgres/timeline-history.js';
import { parseBackupLabel } from '../../src/postgres/backup-label.js';
import { parseLsn, segmentFileName } from '../../src/postgres/lsn.js';
import { planArchive as archive, SEG } from '../helpers/plan-archive.js';
import { planArchiveOf } from '../../src/restore/plan-inputs.js';

const lsn = parseLsn;

const T0 = Date.parse('2026-12-01T10:00:00Z');
const backups: PlanBackup[] = [
  { id: 'A', complete: true, timeline: 1, startLsn: lsn('0/2000028'), stopLsn: lsn('0/2000138'), stopTimeMs: T0 },
  { id: 'B', complete: true, timeline: 1, startLsn: lsn('0/5000028'), stopLsn: lsn('0/5000100'), stopTimeMs: T0 + 3600_000, stopNextXid: 800n },
  { id: 'C', complete: false, timeline: 1, startLsn: lsn('0/8000028'), stopLsn: lsn('0/8000100'), stopTimeMs: T0 + 7200_000 },
];
const opts = (f: Parameters<typeof parseTargetOptions>[0]) => parseTargetOptions(f);

test('target time: the newest complete backup that ended before it; an incomplete one is never chosen', () => {
  const a = archive([[1, 2, 12]]);
  assert.equal(planRestore(backups, a, opts({ time: '2026-12-01 10:30:00+00' })).backup.id, 'A');
  assert.equal(planRestore(backups, a, opts({ time: '2026-12-01 13:30:00+00' })).backup.id, 'B');
  assert.throws(() => planRestore(backups, a, opts({ time: '2026-12-01 09:59:00+00' })), (e: { code: string; message: string }) => e.code === 'ERR_NOT_FOUND' && /before the point where every backup is consistent/.test(e.message));
});

test('target LSN: chosen by stop LSN; beyond the end of the archive is refused with the first missing segment', () => {
  const a = archive([[1, 2, 9]]);
  const p = planRestore(backups, a, opts({ lsn: '0/9000000' }));
  assert.equal(p.backup.id, 'B');
  assert.deepEqual(p.walNeeded, ['000000010000000000000005', '000000010000000000000006', '000000010000000000000007', '000000010000000000000008', '000000010000000000000009']);
  assert.throws(() => planRestore(backups, a, opts({ lsn: '0/B000000' })), /target LSN 0\/B000000 is beyond the end of the archive: WAL segment 00000001000000000000000A is not archived/);
  // Past a segment lost from the archive, with later ones archived: a gap, which waiting never fills.
  const holed = archive([[1, 2, 9], [1, 11, 20]]);
  assert.throws(() => planRestore(backups, holed, opts({ lsn: '0/F000000' })), (e: { message: string; hint?: string }) => {
    assert.match(e.message, /the archive cannot reach the target: WAL segment 00000001000000000000000A is missing/);
    assert.match(e.hint ?? '', /the archive has a gap/);
    return true;
  });
  // Far past the archive (black-box run Y: FFFFFFFF/FFFFFFFF with --target-timeline listed 2^40
  // segments and ran out of memory): refused at once, with the first missing segment; past a gap too.
  for (const timeline of ['1', 'current', 'latest']) {
    assert.throws(() => planRestore(backups, a, opts({ lsn: 'FFFFFFFF/FFFFFFFF', timeline })), /target LSN FFFFFFFF\/FFFFFFFF is beyond the end of the archive: WAL segment 00000001000000000000000A is not archived/);
    assert.throws(() => planRestore(backups, holed, opts({ lsn: '1000/0', timeline })), /WAL segment 00000001000000000000000A is missing \(the first missing of the 1048572 segments from backup B's start/);
  }
});

test('a gap between the backup and its stop point is refused, naming the segment', () => {
  const a = archive([[1, 2, 4], [1, 6, 9]]);
  assert.throws(() => planRestore(backups, a, opts({ lsn: '0/6000000' })), /WAL segment 000000010000000000000005 is missing/);
  // An older backup can still reach a target before the gap.
  assert.equal(planRestore(backups, a, opts({ lsn: '0/4800000' })).backup.id, 'A');
});

test('--set: unknown, incomplete, and a target before its consistency point are refused', () => {
  const a = archive([[1, 2, 12]]);
  assert.throws(() => planRestore(backups, a, opts({}), 'Z'), (e: { code: string; message: string }) => e.code === 'ERR_NOT_FOUND' && /backup "Z" does not exist/.test(e.message));
  assert.throws(() => planRestore(backups, a, opts({}), 'C'), /not complete/);
  assert.throws(() => planRestore(backups, a, opts({ lsn: '0/3000000' }), 'B'), /before the point where backup "B" is consistent/);
  assert.equal(planRestore(backups, a, opts({ immediate: true }), 'A').walNeededTo, lsn('0/2000138'));
});

test('target xid: a backup that started after the transaction began is not chosen', () => {
  const a = archive([[1, 2, 12]]);
  assert.equal(planRestore(backups, a, opts({ xid: '900' })).backup.id, 'B');
  assert.equal(planRestore(backups, a, opts({ xid: '700' })).backup.id, 'A', 'A has no recorded xid and is older');
  // Only backups that ended while the transaction ran (a batch across the nightly backup): the
  // oldest of them, recovery reaching it if it committed after its stop (target-xid-reach checks).
  const across = planRestore([backups[1]!], a, opts({ xid: '700' }));
  assert.equal(across.backup.id, 'B');
  assert.match(across.reason, /transaction 700 began before the backups after it ended/);
  assert.equal(planRestore(backups, a, opts({ xid: '700' }), 'B').backup.id, 'B', '--set too');
  // Below the oldest transaction running before B started: it had ended, B never reaches it.
  const horizon = [{ ...backups[1]!, startXmin: 750n }];
  assert.equal(planRestore(horizon, a, opts({ xid: '750' })).backup.id, 'B');
  for (const set of [undefined, 'B']) {
    assert.throws(
      () => planRestore(horizon, a, opts({ xid: '700' }), set),
      (e: { code: string; message: string }) => e.code === 'ERR_NOT_FOUND' && /target transaction 700 had ended before (the oldest backup, B,|backup B) started \(the oldest transaction running then was 750\)/.test(e.message),
    );
  }
  // A 32-bit xid of a cluster past its first epoch: the hint gives the 64-bit form.
  const epoch2 = [{ ...backups[1]!, stopNextXid: (2n << 32n) + 800n }];
  assert.throws(
    () => planRestore(epoch2, a, opts({ xid: '900' })),
    (e: { hint?: string }) => /backups are of epoch 2 or later: transaction 900 of epoch 2 is 8589935492/.test(e.hint ?? ''),
  );
  assert.equal(planRestore(epoch2, a, opts({ xid: String((2n << 32n) + 900n) })).backup.id, 'B');
  // Backups of epochs 0 and 1: a 32-bit ID would choose epoch 0's backup and stop at its transaction.
  const spanning = [{ ...backups[0]!, stopNextXid: 700n }, { ...backups[1]!, stopNextXid: (1n << 32n) + 800n }];
  assert.throws(() => planRestore(spanning, a, opts({ xid: '900' })), (e: { message: string; hint?: string }) => {
    assert.match(e.message, /target transaction 900 is a 32-bit ID, and the stanza's backups span transaction ID epochs 0 to 1/);
    assert.match(e.hint ?? '', /8589935492 \(epoch 2\), 4294968196 \(epoch 1\), 900 \(epoch 0\); for the transaction of epoch 0, name the backup to restore with --set/);
    return true;
  });
  assert.equal(planRestore(spanning, a, opts({ xid: String((1n << 32n) + 900n) })).backup.id, 'B');
  assert.equal(planRestore(spanning, a, opts({ xid: '900' }), 'A').backup.id, 'A', '--set chooses');
  // 2^31 transactions or more after the backup: recovery may stop at the earlier xid of the same low 32 bits.
  assert.throws(() => planRestore(backups, a, opts({ xid: String(800n + (1n << 32n) + 5n) })), /PostgreSQL compares 32-bit transaction IDs during recovery, so it may stop at transaction 805 instead/);
  // In the first epoch no earlier transaction has the target's low 32 bits: far after the backup is fine.
  assert.equal(planRestore(backups, a, opts({ xid: String(800n + (1n << 31n)) })).backup.id, 'B');
  const epoch1 = [{ ...backups[1]!, stopNextXid: (1n << 32n) + 800n }];
  assert.throws(() => planRestore(epoch1, a, opts({ xid: String((1n << 32n) + 800n + (1n << 31n)) })), /32-bit transaction IDs/);
  assert.equal(planRestore(epoch1, a, opts({ xid: String((1n << 32n) + 800n + (1n << 31n) - 1n) })).backup.id, 'B');
});

test('timelines: latest follows the newest history file; a backup after the fork is not on an older branch; history is required', () => {
  // Timeline 2 forked from 1 at 0/6800000; timeline 3 forked from 2 at 0/9800000.
  const hist2 = '1\t0/6800000\tbefore 2026-12-01 12:00:00+00\n';
  const hist3 = hist2 + '2\t0/9800000\tno recovery target specified\n';
  const onTwo: PlanBackup = { id: 'D', complete: true, timeline: 2, startLsn: lsn('0/7000028'), stopLsn: lsn('0/7000100'), stopTimeMs: T0 + 9000_000 };
  const all = [...backups, onTwo];
  const a = archive([[1, 2, 7], [2, 6, 9], [3, 9, 10]], { 2: hist2, 3: hist3 });
  const latest = planRestore(all, a, opts({}));
  assert.equal(latest.backup.id, 'D');
  assert.equal(latest.branch.timeline, 3);
  assert.equal(latest.archiveEnd, '00000003000000000000000A');
  // On timeline 1 (--target-timeline 1), D is not on the branch: B is chosen and replay stays on 1.
  const one = planRestore(all, a, opts({ timeline: '1' }));
  assert.equal(one.backup.id, 'B');
  assert.deepEqual(one.walNeeded, ['000000010000000000000005']);
  // A target on timeline 1 before the fork, reached along timeline 3's branch from B: segments 5 (tli 1) and 6 (tli 2 begins in 6).
  const early = planRestore(all, a, opts({ lsn: '0/6000000', timeline: '3' }));
  assert.equal(early.backup.id, 'B');
  assert.deepEqual(early.walNeeded, ['000000010000000000000005', '000000020000000000000006']);
  // Timeline 4 has no history file.
  assert.throws(() => planRestore(all, a, opts({ timeline: '4' })), /history file 00000004\.history of timeline 4 is not in the archive/);
  // WAL of timeline 4 archived without its history file: 'latest' cannot be known (recovery would stop at the end of 3,
  // and the promoted server would take number 4 again); a timeline given by number still works.
  const orphaned = archive([[1, 2, 7], [2, 6, 9], [3, 9, 10], [4, 10, 12]], { 2: hist2, 3: hist3 });
  assert.throws(() => planRestore(all, orphaned, opts({})), (e: { message: string; hint?: string }) =>
    /the archive holds WAL of timeline 4 but not the history file 00000004\.history/.test(e.message) && /--target-timeline 3/.test(e.hint ?? ''));
  assert.equal(planRestore(all, orphaned, opts({ timeline: '3' })).branch.timeline, 3);
});

test('timeline history: parse, position to timeline, segment files along a branch', () => {
  const h = parseTimelineHistory('1\t0/3000000\tno recovery target specified\n\n2\t0/5800000\tat restore point "x"\n');
  assert.deepEqual(h.map((x) => x.timeline), [1, 2]);
  const b = timelineBranch(3, h);
  assert.equal(timelineAt(b, lsn('0/2FFFFFF')), 1);
  assert.equal(timelineAt(b, lsn('0/3000000')), 2);
  assert.equal(timelineAt(b, lsn('0/6000000')), 3);
  assert.deepEqual(
    segmentsAlong(b, lsn('0/2000000'), lsn('0/6000000'), SEG).map((s) => segmentFileName(s.timeline, s.segNo, SEG)),
    ['000000010000000000000002', '000000020000000000000003', '000000020000000000000004', '000000030000000000000005', '000000030000000000000006'],
  );
  assert.throws(() => parseTimelineHistory('2\t0/1\tx\n1\t0/2\ty\n'), /increasing/);
  assert.throws(() => parseTimelineHistory('1 nonsense'), /syntax error/);
});

test('backup_label and backup history files', () => {
  const label = parseBackupLabel(`START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-12-01 10:00:00 UTC
LABEL: pgpitr base backup
START TIMELINE: 1
`);
  assert.equal(label.startLsn, lsn('0/2000028'));
  assert.equal(label.startWalFile, '000000010000000000000002');
  assert.equal(label.from, 'primary');
  assert.equal(label.startTimeline, 1);
  assert.equal(label.stopLsn, undefined);
  const history = parseBackupLabel(`START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
STOP WAL LOCATION: 0/2000138 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-12-01 10:00:00 UTC
LABEL: x
START TIMELINE: 1
STOP TIME: 2026-12-01 10:00:01 UTC
STOP TIMELINE: 1
`);
  assert.equal(history.stopLsn, lsn('0/2000138'));
  assert.equal(history.stopTimeline, 1);
  assert.throws(() => parseBackupLabel('LABEL: x\n'), /no "START WAL LOCATION" line/);
});

test('recovery target options: one target, typed, and what PostgreSQL would refuse is refused first', () => {
  assert.equal(parseTargetTime('2026-12-01 11:45:00+00'), Date.parse('2026-12-01T11:45:00Z'));
  assert.equal(parseTargetTime('2026-12-01 12:45:00.5+01:00'), Date.parse('2026-12-01T11:45:00.5Z'));
  assert.equal(parseTargetTime('2026-12-01T11:45:00.123456Z'), Date.parse('2026-12-01T11:45:00.123Z'));
  // Offsets PostgreSQL also reads (black-box run Y): one-digit hours, seconds of zero.
  assert.equal(parseTargetTime('2026-12-01 03:45:00-8'), Date.parse('2026-12-01T11:45:00Z'));
  assert.equal(parseTargetTime('2026-12-01 17:15:00+05:30:00'), Date.parse('2026-12-01T11:45:00Z'));
  assert.throws(() => parseTargetTime('2026-12-01 17:15:00+05:30:12'), /invalid --target-time/);
  assert.throws(() => parseTargetTime('2026-12-01 11:45:00'), (e: { hint?: string }) => /with its zone/.test(e.hint ?? ''));
  // A day the month does not have (Date.parse would roll it over), an hour past 23: refused here, not by the server at start.
  assert.throws(() => parseTargetTime('2026-02-30 00:00:00+00'), /invalid --target-time/);
  assert.throws(() => parseTargetTime('2026-12-01 24:00:01+00'), /invalid --target-time/);
  assert.equal(parseTargetTime('2026-12-01 24:00:00+00'), Date.parse('2026-12-02T00:00:00Z'), 'the next midnight, as PostgreSQL reads it');
  assert.equal(parseTargetTime('2028-02-29 00:00:00+00'), Date.parse('2028-02-29T00:00:00Z'));
  // Written for the server with a numeric zone (it refuses "Z" at start) and the fraction as given.
  const written = (time: string) => (parseTargetOptions({ time }).target as { text: string }).text;
  assert.equal(written('2026-12-01T11:45:00.123456Z'), '2026-12-01 11:45:00.123456+00');
  assert.equal(written('2026-12-01 11:45:00 UTC'), '2026-12-01 11:45:00+00');
  assert.equal(written('2026-12-01 12:45:00.5+01:00'), '2026-12-01 12:45:00.5+01:00');
  // A zone by its IANA name: the offset it has then (winter and summer), written as a number.
  assert.equal(parseTargetTime('2026-12-01 06:45:00.25 America/New_York'), Date.parse('2026-12-01T11:45:00.25Z'));
  assert.equal(written('2026-12-01 06:45:00.123456 America/New_York'), '2026-12-01 06:45:00.123456-05:00');
  assert.equal(written('2026-07-01T13:45:00 Europe/Paris'), '2026-07-01 13:45:00+02:00');
  assert.equal(written('2026-12-01 17:15:00 Asia/Kolkata'), '2026-12-01 17:15:00+05:30');
  assert.equal(written('1850-06-01 12:00:00 America/New_York'), '1850-06-01 12:00:00-04:56:02', 'local mean time: seconds');
  // Skipped or repeated by a daylight-saving change, unknown, or an abbreviation: refused.
  assert.throws(() => parseTargetTime('2026-03-08 02:30:00 America/New_York'), /does not exist in America\/New_York/);
  assert.throws(() => parseTargetTime('2026-11-01 01:30:00 America/New_York'), /exists twice in America\/New_York/);
  assert.throws(() => parseTargetTime('2026-12-01 06:45:00 Mars/Olympus_Mons'), /unknown time zone "Mars\/Olympus_Mons"/);
  assert.throws(() => parseTargetTime('2026-12-01 06:45:00 CET'), (e: { hint?: string }) => /with its zone/.test(e.hint ?? ''));
  assert.throws(() => parseTargetOptions({ time: '2026-12-01 11:45:00+00', lsn: '0/1' }), /only one recovery target/);
  assert.throws(() => parseTargetOptions({ lsn: 'zz' }), /invalid --target-lsn/);
  assert.throws(() => parseTargetOptions({ xid: '-1' }), /invalid --target-xid/);
  assert.throws(() => parseTargetOptions({ name: 'é'.repeat(32) }), /--target-name is 64 bytes long: a restore point's name is at most 63 bytes/);
  assert.equal(parseTargetOptions({ name: 'x'.repeat(63) }).target.kind, 'name');
  assert.throws(() => parseTargetOptions({ immediate: true, exclusive: true }), /--target-exclusive needs/);
  assert.throws(() => parseTargetOptions({ timeline: 'newest' }), /invalid --target-timeline/);
  assert.throws(() => parseTargetOptions({ action: 'promote' }), /needs a recovery target/);
  const o = parseTargetOptions({ name: 'before_drop', action: 'promote' });
  assert.deepEqual([o.target.kind, o.action, o.timeline], ['name', 'promote', 'latest']);
});

test('latest timeline: a newer backup off its branch is refused, not silently skipped for an older one', () => {
  // Timeline 2 forked from 1 at 0/4000000 (a copy restored and promoted elsewhere); B ended on 1 after that.
  const a = archive([[1, 2, 9], [2, 4, 6]], { 2: '1\t0/4000000\tno recovery target specified\n' });
  assert.throws(() => planRestore(backups, a, opts({})), (e: { message: string; hint?: string }) =>
    /backup B \(timeline 1, stop 0\/5000100\) is not on the branch of timeline 2: timeline 2 forked from timeline 1 at 0\/4000000, before the backup ended/.test(e.message) &&
    /--target-timeline current/.test(e.hint ?? ''));
  // Asked for by name, the backup's own timeline works.
  assert.equal(planRestore(backups, a, opts({ timeline: 'current' })).backup.id, 'B');
});

test('latest timeline, a restore point: a newer backup off the branch is refused only when the name follows its start on its own timeline', () => {
  // Timeline 2 forked from 1 at 0/4000000 (a point-in-time recovery in place to the point at
  // 0/3000000, say); B began on timeline 1 after the point.
  const a = archive([[1, 2, 9], [2, 4, 6]], { 2: '1\t0/4000000\tno recovery target specified\n' });
  const point = (at: string) => ({ lsn: lsn(at), end: lsn(at) + 0x30n, timeMs: T0, timeline: 1 });
  const lookup = (onOwn: ReturnType<typeof point> | null) => ({
    firstFrom: (branch: { timeline: number }, from: bigint) => (branch.timeline === 2 ? (from <= lsn('0/3000000') ? point('0/3000000') : null) : from >= lsn('0/5000028') ? onOwn : point('0/3000000')),
    whereEnded: () => 'the end of the archive',
    awaitsMissing: false,
  });
  const named = opts({ name: 'p' });
  // None of the name after B's start on timeline 1: B cannot serve it, and is passed over for A.
  assert.equal(planRestore(backups, a, named, undefined, lookup(null)).backup.id, 'A');
  // One there too: which the user means cannot be told; refused, the hint naming no backup it cannot know reaches the point.
  assert.throws(() => planRestore(backups, a, named, undefined, lookup(point('0/6000000'))), (e: { message: string; hint?: string }) =>
    /backup B \(timeline 1, stop 0\/5000100\) is not on the branch of timeline 2/.test(e.message) &&
    /give --set with a backup on its branch that ended before the restore point/.test(e.hint ?? ''));
});

test('--target-timeline current without --set: the backup that ended last, not the abandoned future with greater LSNs', () => {
  // Timeline 1 ran on to 0/9000100 (backup F, 11:00); a point-in-time recovery in place forked timeline 2 at
  // 0/6000000 (12:00) and backup G ended on it at 0/7000100 (13:00).
  const forked: PlanBackup[] = [
    { id: 'F', complete: true, timeline: 1, startLsn: lsn('0/9000028'), stopLsn: lsn('0/9000100'), stopTimeMs: T0 + 3600_000 },
    { id: 'G', complete: true, timeline: 2, startLsn: lsn('0/7000028'), stopLsn: lsn('0/7000100'), stopTimeMs: T0 + 3 * 3600_000 },
  ];
  const a = archive([[1, 2, 9], [2, 6, 8]], { 2: '1\t0/6000000\tbefore 2026-12-01 11:30:00+00\n' });
  assert.equal(planRestore(forked, a, opts({ timeline: 'current' })).backup.id, 'G');
  assert.equal(planRestore(forked, a, opts({ timeline: 'current', immediate: true })).backup.id, 'G');
  // A target before G ended: the newest that ended before it, F, along its own timeline.
  assert.equal(planRestore(forked, a, opts({ timeline: 'current', time: '2026-12-01 12:30:00+00' })).backup.id, 'F');
  // Following the latest timeline without knowing when things were stored, F is said, not skipped (as above).
  // The hint names the backup on the branch that --set takes, and the in-place case.
  assert.throws(() => planRestore(forked, a, opts({})), (e: { message: string; hint?: string }) =>
    /backup F \(timeline 1, stop 0\/9000100\) is not on the branch of timeline 2/.test(e.message) && /give --set G\b/.test(e.hint ?? '') && /point-in-time recovery in place/.test(e.hint ?? ''));
  // Timeline 1 asked for with only G left (F expired): no backup is on its branch, said as such.
  assert.throws(() => planRestore([forked[1]!], a, opts({ timeline: '1' })), (e: { message: string; hint?: string }) =>
    /no complete backup is on the branch of timeline 1: the backups are of timeline 2/.test(e.message) && /expired or never taken/.test(e.hint ?? '') && !/copy/.test(e.hint ?? ''));
});

test('a backup holding its own WAL needs nothing from the archive to be consistent', () => {
  const selfContained: PlanBackup = { id: 'S', complete: true, timeline: 1, startLsn: lsn('0/A000028'), stopLsn: lsn('0/C000120'), stopTimeMs: T0 + 9_000_000, walIncluded: true };
  assert.deepEqual(planRestore([selfContained], archive([]), opts({ immediate: true })).walNeeded, []);
  // Its copy of the stop segment ends at the stop: past it, that segment comes from the archive.
  assert.deepEqual(planRestore([selfContained], archive([[1, 12, 14]]), opts({ lsn: '0/D800000' })).walNeeded, ['00000001000000000000000C', '00000001000000000000000D']);
  assert.throws(() => planRestore([selfContained], archive([[1, 13, 14]]), opts({ lsn: '0/D800000' })), /WAL segment 00000001000000000000000C is missing/);
  // ... and the archive does not run on past the stop without it.
  assert.equal(planRestore([selfContained], archive([[1, 13, 14]]), opts({ immediate: true })).archiveEnd, '00000001000000000000000C');
  assert.equal(planRestore([selfContained], archive([[1, 12, 14]]), opts({ immediate: true })).archiveEnd, '00000001000000000000000E');
});

test('a stop on a segment boundary needs the segment that starts there for a target: PostgreSQL reads the record after the consistent point to stop', () => {
  // A standby's backup whose last replayed record was the primary's WAL switch (seen: recovery
  // reached consistency at 0/C000000, found no segment C, and failed before its target).
  const onBoundary: PlanBackup = { id: 'T', complete: true, timeline: 1, startLsn: lsn('0/A000028'), stopLsn: lsn('0/C000000'), stopTimeMs: T0 + 9_000_000, walIncluded: false };
  assert.deepEqual(planRestore([onBoundary], archive([[1, 10, 12]]), opts({ immediate: true })).walNeeded, ['00000001000000000000000A', '00000001000000000000000B', '00000001000000000000000C']);
  assert.throws(() => planRestore([onBoundary], archive([[1, 10, 11]]), opts({ immediate: true })), (e: { message: string; hint?: string }) =>
    /WAL segment 00000001000000000000000C is not archived yet: backup T becomes consistent at 0\/C000000/.test(e.message) && /pgpitr check against the primary writes a restore point, switches WAL.*Or restore without a target/.test(e.hint ?? ''));
  // Without a target: consistent at the end of B, recovery finds no more WAL and ends; C not needed.
  assert.deepEqual(planRestore([onBoundary], archive([[1, 10, 11]]), opts({})).walNeeded, ['00000001000000000000000A', '00000001000000000000000B']);
  // Held in the backup up to its stop: the next segment comes from the archive for a target only.
  const selfContained: PlanBackup = { ...onBoundary, id: 'S', walIncluded: true };
  assert.deepEqual(planRestore([selfContained], archive([[1, 12, 12]]), opts({ immediate: true })).walNeeded, ['00000001000000000000000C']);
  assert.deepEqual(planRestore([selfContained], archive([[1, 9, 9]]), opts({})).walNeeded, []);
});

test('a gap after the WAL replay needs: the plan names the missing segment and where the archive resumes, along the branch', () => {
  // No gap: nothing past the end of the run.
  assert.equal(planRestore(backups, archive([[1, 2, 12]]), opts({})).gap, null);
  // Segment 8 missing, 9 to 12 archived: the run from B ends at 7.
  const p = planRestore(backups, archive([[1, 2, 7], [1, 9, 12]]), opts({}));
  assert.equal(p.archiveEnd, '000000010000000000000007');
  assert.deepEqual(p.gap, { missing: '000000010000000000000008', resumesAt: '000000010000000000000009' });
  // Along a branch: timeline 2 began in segment 6; 1's own segments after the fork are not its WAL.
  const hist2 = '1\t0/6800000\tno recovery target specified\n';
  const abandoned = planRestore(backups, archive([[1, 2, 7], [1, 9, 12], [2, 6, 8]], { 2: hist2 }), opts({}));
  assert.equal(abandoned.archiveEnd, '000000020000000000000008');
  assert.equal(abandoned.gap, null, 'timeline 1 after its switchpoint is another history, not a gap');
  const resumesOnTwo = planRestore(backups, archive([[1, 2, 5], [2, 7, 9]], { 2: hist2 }), opts({}));
  assert.equal(resumesOnTwo.archiveEnd, '000000010000000000000005');
  assert.deepEqual(resumesOnTwo.gap, { missing: '000000020000000000000006', resumesAt: '000000020000000000000007' });
});

test('branch spans: each segment read from the newest timeline begun by then; a timeline begun in its parent\'s first segment replaces it', () => {
  const b = timelineBranch(3, parseTimelineHistory('1\t0/3000000\tx\n2\t0/5800000\ty\n'));
  assert.deepEqual(branchSpans(b, SEG), [
    { timeline: 1, from: 0n, to: 2n },
    { timeline: 2, from: 3n, to: 4n },
    { timeline: 3, from: 5n, to: null },
  ]);
  assert.deepEqual(branchSpans(timelineBranch(3, parseTimelineHistory('1\t0/3000000\tx\n2\t0/3800000\ty\n')), SEG), [
    { timeline: 1, from: 0n, to: 2n },
    { timeline: 3, from: 3n, to: null },
  ]);
});

test('a damaged history file stops only a restore that follows its timeline, named as damaged', async () => {
  const hist2 = '1\t0/6800000\tbefore 2026-12-01 12:00:00+00\n';
  const files: Record<string, string> = { '00000002.history': hist2, '00000003.history': 'not a history file\n' };
  const view = { names: () => [...Object.keys(files), '000000010000000000000002', '000000010000000000000003', '000000010000000000000004', '000000010000000000000005', '000000020000000000000006'], readHistory: async (n: string) => (files[n] === undefined ? null : Buffer.from(files[n]!)) };
  const a = await planArchiveOf(view, SEG);
  assert.equal(planRestore(backups, a, opts({ timeline: '2' })).branch.timeline, 2);
  assert.throws(() => planRestore(backups, a, opts({})), /history file 00000003\.history in the archive is damaged: 00000003\.history: syntax error/);
});

test('latest timeline: an ancestor timeline archived past its fork as far as the branch reaches is said (a copy promoted elsewhere), an abandoned shorter future is not', () => {
  // Timeline 2 forked from 1 at 0/4000000; A ended on 1 before the fork.
  const hist2 = '1\t0/4000000\tno recovery target specified\n';
  const onlyA = [backups[0]!];
  // Timeline 1 went on to segment 9 while timeline 2 reaches 6: production on 1, a copy's timeline 2.
  const wentOn = planRestore(onlyA, archive([[1, 2, 9], [2, 4, 6]], { 2: hist2 }), opts({}));
  assert.equal(wentOn.branch.timeline, 2);
  assert.deepEqual(wentOn.wentOn, [{ timeline: 1, fork: '0/4000000', last: '000000010000000000000009' }]);
  // A point-in-time recovery in place: timeline 1's abandoned future (segments 4-5) ends before timeline 2 (to 9).
  assert.deepEqual(planRestore(onlyA, archive([[1, 2, 5], [2, 4, 9]], { 2: hist2 }), opts({})).wentOn, []);
  // Asked for by number, nothing to say.
  assert.deepEqual(planRestore(onlyA, archive([[1, 2, 9], [2, 4, 6]], { 2: hist2 }), opts({ timeline: '2' })).wentOn, []);
});

test('latest timeline judged by when things were stored: a copy promoted elsewhere is refused whatever the target; after a point-in-time recovery in place, the abandoned future is passed over', () => {
  const H2 = '1\t0/4000000\tno recovery target specified\n';
  const HOUR = 3600_000;
  // Timeline 2 forked from 1 at 0/4000000; B (timeline 1, past the fork) ended at T0 + 1h.
  // The file stored last: segment segNo of a timeline, stored at ms.
  const stored = (timeline: number, segNo: bigint, ms: number) => ({ name: segmentFileName(timeline, segNo, SEG), timeline, ms });
  const withTimes = (historyMs: number, last: ReturnType<typeof stored>) => ({ ...archive([[1, 2, 9], [2, 4, 6]], { 2: H2 }), stored: { historyMs: (t: number) => (t === 2 ? historyMs : null), last } });
  const quiet = (historyMs: number) => withTimes(historyMs, stored(2, 6n, historyMs + 1000)); // timeline 2 archived last
  // A drill: timeline 2 began at T0, B ended an hour later: timeline 1 went on. Refused even for a
  // target B does not suit (B was skipped for A before, and recovery followed the copy's WAL).
  for (const target of [{}, { lsn: '0/4800000' }, { time: '2026-12-01 10:30:00+00' }]) {
    assert.throws(() => planRestore(backups, quiet(T0), opts(target)), (e: Error & { code: string; hint?: string }) =>
      e instanceof LatestTimelineDoubt && e.code === 'ERR_CHECK' && /newest timeline of the archive, 2, may not be this cluster's present: backup B \(timeline 1, stop 0\/5000100\) is not on its branch and ended/.test(e.message) && /--target-timeline 1 .*--target-timeline 2/.test(e.hint ?? ''), JSON.stringify(target));
  }
  // No backup after it, but the file stored last is a timeline-1 segment past the fork, stored well after timeline 2 began: refused too.
  assert.throws(() => planRestore([backups[0]!], withTimes(T0, stored(1, 9n, T0 + HOUR)), opts({ lsn: '0/4800000' })), /timeline 1 is archived now \(the file stored last, .*, is of timeline 1, past its fork to timeline 2 at 0\/4000000\)/);
  // ... and a minute after: two files of the repository, one clock (a copy promoted a minute
  // before production archived its next segment; a failover's old primary archiving leftovers on its
  // return is refused too, --target-timeline says which); not a timeline-1 segment before the fork.
  assert.throws(() => planRestore([backups[0]!], withTimes(T0, stored(1, 9n, T0 + 60_000)), opts({ lsn: '0/4800000' })), LatestTimelineDoubt);
  assert.equal(planRestore([backups[0]!], withTimes(T0, stored(1, 3n, T0 + HOUR)), opts({ lsn: '0/4800000' })).branch.timeline, 2);
  // The copy archiving too, its file stored last, while timeline 1 went on past the fork after it began: refused all the same.
  const both = (historyMs: number, timeline1Ms: number) => {
    const a = withTimes(historyMs, stored(2, 6n, timeline1Ms + 1000));
    return { ...a, stored: { ...a.stored, lastFrom: (t: number, from: bigint) => (t === 1 && 9n >= from ? stored(1, 9n, timeline1Ms) : null) } };
  };
  assert.throws(() => planRestore([backups[0]!], both(T0, T0 + HOUR), opts({})), (e: Error) =>
    e instanceof LatestTimelineDoubt && /timeline 1 went on being archived, past its fork to timeline 2 at 0\/4000000 \(segment 000000010000000000000009 stored/.test(e.message));
  // Production failed over to timeline 2; a drill's copy restored along timeline 1 became timeline 3,
  // its file stored last: timeline 2 (not in 3's history) archived after 3 began is the doubt.
  const H3 = '1\t0/4000000\tno recovery target specified\n';
  const sibling = archive([[1, 2, 5], [2, 4, 9], [3, 4, 6]], { 2: H2, 3: H3 });
  const drill = { ...sibling, stored: { historyMs: (t: number) => (t === 3 ? T0 : t === 2 ? T0 - 10 * HOUR : null), last: stored(3, 6n, T0 + HOUR + 1000), lastFrom: (t: number) => (t === 2 ? stored(2, 9n, T0 + HOUR) : null) } };
  assert.throws(() => planRestore([backups[0]!], drill, opts({})), (e: Error) =>
    e instanceof LatestTimelineDoubt && /timeline 2 went on being archived, which is not in timeline 3's history \(segment 000000020000000000000009 stored/.test(e.message));
  // Production's timeline 2 without its history file in the archive, a copy's timeline 3 forked from it:
  // 2 is an ancestor of 3 (its fork is in 3's history), and archived past that fork after 3 began.
  const H3of2 = '1\t0/4000000\tno recovery target specified\n2\t0/7000000\tno recovery target specified\n';
  const noH2 = archive([[1, 2, 5], [2, 4, 12], [3, 7, 9]], { 3: H3of2 });
  const copyOf2 = { ...noH2, stored: { historyMs: (t: number) => (t === 3 ? T0 : null), last: stored(3, 9n, T0 + HOUR + 1000), lastFrom: (t: number, from: bigint) => (t === 2 && 12n >= from ? stored(2, 12n, T0 + HOUR) : null) } };
  assert.throws(() => planRestore([backups[0]!], copyOf2, opts({})), (e: Error) =>
    e instanceof LatestTimelineDoubt && /timeline 2 went on being archived, past its fork to timeline 3 at 0\/7000000/.test(e.message));
  // A failover: the old primary archived its last timeline-1 segment 5 s after timeline 2 began, and
  // timeline 2 archived on for an hour: timeline 2 went on. Refused only until timeline 2 archives again.
  const failover = (tl2LastMs: number) => {
    const a = withTimes(T0, stored(2, 6n, tl2LastMs));
    return { ...a, stored: { ...a.stored, lastFrom: (t: number, from: bigint) => (t === 1 && 9n >= from ? stored(1, 9n, T0 + 5000) : t === 2 ? stored(2, 6n, tl2LastMs) : null) } };
  };
  assert.equal(planRestore([backups[0]!], failover(T0 + HOUR), opts({})).branch.timeline, 2);
  assert.throws(() => planRestore([backups[0]!], failover(T0 + 2000), opts({})), (e: Error & { hint?: string }) =>
    e instanceof LatestTimelineDoubt && /timeline 2's next archived segment ends this doubt/.test(e.hint ?? ''));
  // A copy archiving its timeline 2 on as production archives timeline 1 (the copy's file stored
  // last): production's stores past the fork span an hour after timeline 2 began, not a burst: refused.
  const interleaved = (() => {
    const a = withTimes(T0, stored(2, 6n, T0 + 61 * 60_000));
    const lastFrom = (t: number, from: bigint) => (t === 1 && 9n >= from ? stored(1, 9n, T0 + HOUR) : t === 2 ? stored(2, 6n, T0 + 61 * 60_000) : null);
    const storedAfter = (t: number, from: bigint, after: number) => (t === 1 && 9n >= from && after < T0 + 60_000 ? { first: stored(1, 9n, T0 + 60_000), count: 2 } : null);
    return { ...a, stored: { ...a.stored, lastFrom, storedAfter } };
  })();
  assert.throws(() => planRestore([backups[0]!], interleaved, opts({})), LatestTimelineDoubt);
  // Within a minute, but five segments past the fork: more than an old primary leaves.
  const burst = { ...interleaved, stored: { ...interleaved.stored, lastFrom: (t: number, from: bigint) => (t === 1 && 9n >= from ? stored(1, 9n, T0 + 50_000) : t === 2 ? stored(2, 6n, T0 + 61 * 60_000) : null), storedAfter: (t: number) => (t === 1 ? { first: stored(1, 9n, T0 + 10_000), count: 5 } : null) } };
  assert.throws(() => planRestore([backups[0]!], burst, opts({})), LatestTimelineDoubt);
  // After a point-in-time recovery in place, timeline 1's last segments were stored before timeline 2 began.
  assert.equal(planRestore([backups[0]!], both(T0 + HOUR, T0), opts({})).branch.timeline, 2);
  // Named, either timeline is followed.
  assert.equal(planRestore(backups, quiet(T0), opts({ lsn: '0/4800000', timeline: '1' })).backup.id, 'A');
  assert.equal(planRestore(backups, quiet(T0), opts({ lsn: '0/4800000', timeline: '2' })).branch.timeline, 2);
  // A point-in-time recovery in place: timeline 2 began well after B ended (B is the abandoned
  // future): B is passed over, A (on the branch) chosen, with no target too.
  const inPlace = quiet(T0 + 3 * HOUR);
  assert.equal(planRestore(backups, inPlace, opts({})).backup.id, 'A');
  assert.equal(planRestore(backups, inPlace, opts({})).branch.timeline, 2);
  // Nothing proves either (B ended within the clock slack of the promotion, or times were reset by a
  // copy): judged by the target alone, as without stored times: a B that suits is refused by name.
  assert.throws(() => planRestore(backups, quiet(T0 + HOUR + 60_000), opts({})), /backup B \(timeline 1, stop 0\/5000100\) is not on the branch of timeline 2/);
});

test('target time to the microsecond: the fraction past the millisecond kept, rounded as timestamptz input rounds', async () => {
  const { targetTimeMicros, parseTargetTime } = await import('../../src/restore/restore-target.js');
  const us = (text: string) => targetTimeMicros(text, parseTargetTime(text));
  const base = BigInt(Date.UTC(2026, 11, 1, 11, 45)) * 1000n;
  assert.equal(us('2026-12-01 11:45:00+00'), base);
  assert.equal(us('2026-12-01 11:45:00.5+00'), base + 500_000n);
  assert.equal(us('2026-12-01 11:45:00.123456+00'), base + 123_456n);
  assert.equal(us('2026-12-01 11:45:00.1234565+00'), base + 123_457n);
  assert.equal(us('2026-12-01 11:45:00.9999996+00'), base + 1_000_000n);
  assert.equal(us('2026-12-01 12:45:00.000001+01:00'), base + 1n);
});
