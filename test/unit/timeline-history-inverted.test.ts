// A point-in-time recovery to a point before a failover, following the latest timeline (the
// default), writes a history whose last switchpoint comes before the one above it: it followed
// timeline 3 but stopped while replay was still on timeline 2. PostgreSQL reads such a history
// newest first, so timeline 2 ended where the new timeline began, not where timeline 3 did.
// Seen by a black-box run on 13 and 18: restore chose a backup of timeline 2's abandoned future
// (the server then refused to start: "requested timeline 4 is not a child of this server's
// history") and expire removed the only backups timeline 4 can be restored from.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { branchContains, branchSpans, parseTimelineHistory, timelineAt, timelineBranch } from '../../src/postgres/timeline-history.js';
import { parseLsn } from '../../src/postgres/lsn.js';
import { planRestore } from '../../src/restore/plan.js';
import type { PlanBackup } from '../../src/restore/plan.js';
import { parseTargetOptions } from '../../src/restore/restore-target.js';
import { planArchive, SEG } from '../helpers/plan-archive.js';

const lsn = parseLsn;
const H2 = '1\t0/7000000\tno recovery target specified\n';
const H3 = `${H2}2\t0/100000A0\tno recovery target specified\n`;
// The recovery followed timeline 3 and stopped at 0/9001C28, still on timeline 2.
const H4 = `${H3}3\t0/9001C28\tafter transaction 4349\n`;

test('an inverted history: each ancestor ends at the first switchpoint at or after it, as PostgreSQL reads it', () => {
  const h = parseTimelineHistory(H4);
  assert.deepEqual(h.map((s) => [s.timeline, s.switchpoint]), [[1, lsn('0/7000000')], [2, lsn('0/9001C28')], [3, lsn('0/9001C28')]]);
  const branch = timelineBranch(4, h);
  assert.equal(timelineAt(branch, lsn('0/8000000')), 2);
  assert.equal(timelineAt(branch, lsn('0/A000000')), 4, 'past the new timeline\'s start: timeline 4, not 2');
  assert.ok(branchContains(branch, 2, lsn('0/8000100')));
  assert.ok(!branchContains(branch, 2, lsn('0/C0000B8')), 'timeline 2 past 0/9001C28 is the abandoned future');
  assert.ok(!branchContains(branch, 3, lsn('0/10500000')));
  // Segments: 1 up to 6, 2 for 7 and 8, 4 from 9 (the segment it began in).
  assert.deepEqual(branchSpans(branch, SEG).map((s) => [s.timeline, s.from, s.to]), [[1, 0n, 6n], [2, 7n, 8n], [4, 9n, null]]);
  // A history in order is read as written.
  assert.deepEqual(parseTimelineHistory(H3).map((s) => s.switchpoint), [lsn('0/7000000'), lsn('0/100000A0')]);
});

test('restore along the inverted history takes a backup from before the fork, never one of timeline 2\'s abandoned future', () => {
  const T0 = Date.parse('2026-12-06T10:00:00Z');
  const backups: PlanBackup[] = [
    { id: 'B1', complete: true, timeline: 1, startLsn: lsn('0/2000028'), stopLsn: lsn('0/2000138'), stopTimeMs: T0 },
    { id: 'B2', complete: true, timeline: 2, startLsn: lsn('0/80000D8'), stopLsn: lsn('0/8000200'), stopTimeMs: T0 + 60_000 },
    { id: 'B4', complete: true, timeline: 2, startLsn: lsn('0/C000060'), stopLsn: lsn('0/C0000B8'), stopTimeMs: T0 + 120_000 },
  ];
  // Timeline 2 archived up to 0x10 (it went on until the switchover), 3 from 0x10, 4 from 9.
  const a = planArchive([[1, 1, 7], [2, 7, 0x10], [3, 0x10, 0x12], [4, 9, 0xb]], { 2: H2, 3: H3, 4: H4 });
  const opts = (f: Parameters<typeof parseTargetOptions>[0]) => parseTargetOptions(f);
  // B4 ended past the fork: with nothing saying it is the abandoned future, said rather than skipped.
  assert.throws(() => planRestore(backups, a, opts({})), /backup B4 \(timeline 2, stop 0\/C0000B8\) is not on the branch of timeline 4: timeline 4 forked from timeline 2 at 0\/9001C28, before the backup ended/);
  const p = planRestore(backups, a, opts({}), 'B2');
  assert.equal(p.branch.timeline, 4);
  assert.equal(p.archiveEnd, '00000004000000000000000B');
  assert.throws(() => planRestore(backups, a, opts({ timeline: '4' }), 'B4'), /not on the branch of timeline 4/);
  // Along timeline 3 (as it was before the recovery in place), B4 is on the branch.
  assert.equal(planRestore(backups, a, opts({ timeline: '3' }), 'B4').archiveEnd, '000000030000000000000012');
});
