// What info promises a restore can do, on made-up catalogs and archives:
// which complete backups can be restored (and why not), and the recovery
// windows, split by gaps and by branches that leave a backup behind.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { recoveryReach } from '../../src/restore/recovery-window.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';
import { planArchive as archive } from '../helpers/plan-archive.js';

function record(id: string, seg: number, extra: Partial<BackupRecord> = {}): BackupRecord {
  const hex = seg.toString(16).toUpperCase();
  return {
    id,
    state: 'complete',
    timeline: 1,
    start_lsn: `0/${hex}000028`,
    stop_lsn: `0/${hex}000100`,
    stop_time: new Date(Date.parse('2026-12-01T10:00:00Z') + seg * 60_000).toISOString(),
    wal: 'archive',
    ...extra,
  } as BackupRecord;
}

test('one unbroken archive: one window from the oldest backup to the last segment', () => {
  const r = recoveryReach([record('A', 2), record('B', 5), record('C', 8, { state: 'failed' })], archive([[1, 2, 12]]));
  assert.deepEqual([...r.problems], [['A', null], ['B', null]]);
  assert.deepEqual(r.windows, [
    { from: { backup: 'A', time: '2026-12-01T10:02:00.000Z', lsn: '0/2000100', timeline: 1 }, to: { backup: 'B', timeline: 1, segment: '00000001000000000000000C' }, needs: null, withSet: null },
  ]);
});

test('a gap splits the window; a backup whose own WAL is missing is not restorable, and says which segment', () => {
  const r = recoveryReach([record('A', 2), record('B', 5), record('C', 9)], archive([[1, 2, 3], [1, 6, 12]]));
  assert.equal(r.problems.get('A'), null);
  assert.match(r.problems.get('B')!, /WAL segment 000000010000000000000005/);
  assert.equal(r.problems.get('C'), null);
  assert.deepEqual(
    r.windows.map((w) => [w.from.backup, w.to.backup, w.to.segment]),
    [
      ['A', 'A', '000000010000000000000003'],
      ['C', 'C', '00000001000000000000000C'],
    ],
  );
});

test('a backup that takes files from one no longer complete is not restorable', () => {
  const r = recoveryReach([record('A', 2, { state: 'failed' }), record('B', 5, { type: 'incr', prior: 'A', references: ['A'] } as Partial<BackupRecord>)], archive([[1, 2, 9]]));
  assert.match(r.problems.get('B')!, /takes files from backup A, which is not a complete backup/);
  assert.deepEqual(r.windows, []);
});

test('the latest timeline is followed; a backup left behind by its fork keeps a window that only --target-timeline current reaches', () => {
  // Timeline 2 forked from 1 at 0/6000000: A (stop 0/2000100) is on its branch, C (stop 0/8000100 on 1) is not.
  const a = archive([[1, 2, 9], [2, 6, 11]], { 2: '1\t0/6000000\tno recovery target\n' });
  const r = recoveryReach([record('A', 2), record('C', 8)], a);
  assert.deepEqual(
    r.windows.map((w) => [w.from.backup, w.to.timeline, w.to.segment, w.needs?.option ?? null]),
    [
      ['A', 2, '00000002000000000000000B', null],
      ['C', 1, '000000010000000000000009', '--target-timeline current'],
    ],
  );
  assert.match(r.windows[1]!.needs!.why, /backup C .* is not on the branch of timeline 2/);
  // Restore without --set refuses targets past C (newer, off the branch, nothing says it is the
  // abandoned future): A's window says so, as restore does, and names the backup --set takes.
  assert.deepEqual([r.windows[0]!.withSet?.past, r.windows[0]!.withSet?.until, r.windows[0]!.withSet?.set], ['C', null, 'A']);
  assert.match(r.windows[0]!.withSet!.why, /backup C .* is not on the branch of timeline 2/);
  assert.equal(r.windows[1]!.withSet, null);
  // A backup taken on timeline 2 since (D, 0/A000100): targets past its end are restored from it
  // without --set; those between C's end and D's are still refused, and need --set A.
  const d = record('D', 10, { timeline: 2 });
  const after = recoveryReach([record('A', 2), record('C', 8), d], a).windows.find((w) => w.needs === null)!;
  assert.deepEqual([after.withSet?.past, after.withSet?.until, after.withSet?.set], ['C', 'D', 'A']);
});

test('a backup holding its own WAL: the window ends at its stop unless the archive holds the stop segment', () => {
  const b = record('B', 5, { wal: 'included', stop_lsn: '0/5000120' });
  assert.deepEqual(recoveryReach([b], archive([[1, 6, 12]])).windows.map((w) => w.to.segment), ['000000010000000000000005']);
  assert.deepEqual(recoveryReach([b], archive([[1, 5, 12]])).windows.map((w) => w.to.segment), ['00000001000000000000000C']);
});
