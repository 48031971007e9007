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
  // The pinned backup holds the WAL from its own start.
  assert.equal(d.walKeepFromSegNo, 20n);
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
