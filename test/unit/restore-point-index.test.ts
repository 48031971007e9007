// The restore point index: what archiving records of each segment read on its
// own (restore points, a restore point running on into the next segment, the
// WAL ending), and a search that trusts it: the same plan as reading the whole
// archive, with only the segments the index cannot answer for read. Over
// synthetic WAL (test/helpers/wal-builder.ts).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { segmentRestorePoints } from '../../src/postgres/segment-restore-points.js';
import type { SegmentRestorePoints } from '../../src/postgres/segment-restore-points.js';
import { planWithRestorePoint } from '../../src/restore/restore-point-search.js';
import type { PlanArchive, PlanBackup } from '../../src/restore/plan.js';
import type { TargetOptions } from '../../src/restore/restore-target.js';
import { parseSegmentFileName } from '../../src/postgres/lsn.js';
import { crc32cJs } from '../../src/storage/filter/crc32c.js';
import { SEG, WalBuilder, filler, restorePoint } from '../helpers/wal-builder.js';

const SEGMENTS = 8;

const summaries = (w: WalBuilder, n: number): SegmentRestorePoints[] => Array.from({ length: n }, (_, i) => segmentRestorePoints(w.start + BigInt(i * SEG), w.segment(i), crc32cJs));

test('each segment on its own: the points beginning in it, a point running on into the next (header whole or split), the WAL ending', () => {
  const w = new WalBuilder(0n, 4);
  w.add(filler(100));
  const a = w.add(restorePoint('a', Date.UTC(2026, 11, 5)));
  w.padTo(BigInt(SEG - 40));
  w.add(restorePoint('crossing', Date.UTC(2026, 11, 5)));
  w.add(filler(100));
  w.padTo(BigInt(2 * SEG - 8));
  w.add(restorePoint('split', Date.UTC(2026, 11, 5)));
  w.add(filler(100));
  w.closePages();
  const s = summaries(w, 4);
  assert.deepEqual(s[0]!.points.map((p) => [p.name, p.lsn]), [['a', a]]);
  assert.equal(s[0]!.crosses, true, 'the record crossing into segment 1 is a restore point');
  assert.deepEqual(s[1]!.points, [], 'segment 1 begins with the rest of it: passed over');
  assert.equal(s[1]!.crosses, true, 'only 8 bytes of the next record in segment 1: it may be one');
  assert.equal(s[1]!.ends, false);
  assert.deepEqual([s[2]!.points, s[2]!.crosses, s[2]!.ends], [[], false, true], 'segment 2: the WAL ends where no page was written');
  const plain = new WalBuilder(0n, 2);
  while (plain.next() < BigInt(SEG + 100)) plain.add(filler(3000));
  plain.closePages();
  assert.deepEqual(summaries(plain, 1)[0], { points: [], crosses: false, ends: false }, 'a segment of other records (one running on into the next)');
});

function scenario() {
  const w = new WalBuilder(0n, SEGMENTS);
  const at = (segNo: number) => {
    while (w.next() < BigInt(segNo * SEG)) w.add(filler(3000));
  };
  const backup = (id: string): PlanBackup => {
    const startLsn = w.next();
    w.add(filler(200));
    return { id, complete: true, timeline: 1, startLsn, stopLsn: w.next(), stopTimeMs: 0 };
  };
  at(1);
  const b1 = backup('B1');
  at(2);
  w.add(restorePoint('d', Date.UTC(2026, 11, 1)));
  w.add(restorePoint('early', Date.UTC(2026, 11, 1)));
  at(3);
  const b2 = backup('B2');
  // A point crossing from segment 4 into 5, another of the same name later.
  w.padTo(BigInt(5 * SEG - 40));
  w.add(restorePoint('cross', Date.UTC(2026, 11, 2)));
  at(6);
  w.add(restorePoint('d', Date.UTC(2026, 11, 3)));
  w.add(restorePoint('cross', Date.UTC(2026, 11, 4)));
  w.add(filler(100));
  w.closePages();
  return { w, backups: [b1, b2] };
}

const archive: PlanArchive = {
  segmentSize: SEG,
  hasSegment: (t, s) => t === 1 && s < BigInt(SEGMENTS - 1),
  nextSegment: (t, s) => (t === 1 && s + 1n < BigInt(SEGMENTS - 1) ? s + 1n : null),
  history: () => null,
  timelines: () => [1],
  segmentTimelines: () => [1],
};

const target = (name: string): TargetOptions => ({ target: { kind: 'name', name }, exclusive: false, timeline: 'latest', action: 'promote' });

/** With the index: every segment's record, but those in `unrecorded` (archived by an earlier pgpitr, lost): those are read. */
async function plan(name: string, withIndex: boolean, unrecorded: number[] = []) {
  const { w, backups } = scenario();
  const records = summaries(w, SEGMENTS);
  const reads: number[] = [];
  const segNo = (file: string) => Number(parseSegmentFileName(file, SEG)!.segNo);
  const read = async (file: string) => {
    reads.push(segNo(file));
    return w.segment(segNo(file));
  };
  const index = withIndex ? async (file: string) => (unrecorded.includes(segNo(file)) ? undefined : records[segNo(file)]) : undefined;
  const log: string[] = [];
  const p = await planWithRestorePoint(backups, archive, target(name), undefined, read, (l) => log.push(l), false, index);
  return { p, reads, log };
}

test('with the index, the plan is the one a whole reading makes; only the segments of a crossing point on the way, and those without a record, are read', async () => {
  for (const [name, backup] of [['d', 'B2'], ['cross', 'B2'], ['early', 'B1']] as const) {
    const whole = await plan(name, false);
    const indexed = await plan(name, true);
    assert.equal(whole.p.backup.id, backup, name);
    assert.equal(indexed.p.backup.id, whole.p.backup.id, name);
    assert.deepEqual(indexed.p.restorePoint, whole.p.restorePoint, name);
    assert.ok(whole.reads.length >= 3, `${name}: the whole reading reads the segments from the backup on`);
    assert.deepEqual(indexed.reads, [4, 5], `${name}: only the crossing point's two segments`);
    assert.match(indexed.log.join('\n'), /segment\(s\) known from the restore point index, 2 read/);
    // Segments without a record (archived before the index, or their record lost): read.
    const partly = await plan(name, true, [2, 6]);
    assert.deepEqual(partly.p.restorePoint, whole.p.restorePoint, name);
    if (name !== 'cross') assert.ok(partly.reads.includes(6), `${name}: the search passed segment 6, without a record: read`);
  }
  await assert.rejects(plan('nowhere', true), /restore point "nowhere"/);
});
