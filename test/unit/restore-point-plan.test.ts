// Planning a restore to a named restore point: the archive is read, newest
// backup first, for the first point of the name after each backup's start (what
// PostgreSQL stops at), and the newest backup consistent before it is chosen.
// Over synthetic WAL (test/helpers/wal-builder.ts): three backups, points
// between them, one inside a backup, a name written twice, a gap.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { planWithRestorePoint } from '../../src/restore/restore-point-search.js';
import type { PlanArchive, PlanBackup } from '../../src/restore/plan.js';
import type { TargetOptions } from '../../src/restore/restore-target.js';
import { formatLsn, parseSegmentFileName } from '../../src/postgres/lsn.js';
import { segmentRestorePoints } from '../../src/postgres/segment-restore-points.js';
import { crc32c } from '../../src/storage/filter/crc32c.js';
import { SEG, WalBuilder, filler, restorePoint } from '../helpers/wal-builder.js';

const SEGMENTS = 6;

/** Synthetic WAL: at(n) fills up to segment n; backup(id) writes a backup's span, `inside` while it runs. */
function walOf(walIncluded?: true) {
  const w = new WalBuilder(0n, SEGMENTS);
  const at = (segNo: number) => {
    while (w.next() < BigInt(segNo * SEG)) w.add(filler(3000));
  };
  const backup = (id: string, inside?: () => void): PlanBackup => {
    const startLsn = w.next();
    w.add(filler(200));
    inside?.();
    w.add(filler(200));
    return { id, complete: true, timeline: 1, startLsn, stopLsn: w.next(), stopTimeMs: 0, ...(walIncluded ? { walIncluded } : {}) };
  };
  return { w, at, backup };
}

function scenario() {
  const { w, at, backup } = walOf();
  at(1);
  const b1 = backup('B1');
  at(2);
  const x = w.add(restorePoint('x', Date.UTC(2026, 11, 1)));
  const d1 = w.add(restorePoint('d', Date.UTC(2026, 11, 2)));
  at(3);
  let inside = 0n;
  const b2 = backup('B2', () => (inside = w.add(restorePoint('inside', Date.UTC(2026, 11, 3)))));
  at(4);
  const d2 = w.add(restorePoint('d', Date.UTC(2026, 11, 4)));
  at(5);
  const b3 = backup('B3');
  w.add(filler(100));
  w.closePages();
  return { w, backups: [b1, b2, b3], x, d1, d2, inside };
}

function archiveOf(missing: number[] = []): PlanArchive {
  const have = (s: bigint) => s < BigInt(SEGMENTS) && !missing.includes(Number(s));
  return {
    segmentSize: SEG,
    hasSegment: (t, s) => t === 1 && have(s),
    nextSegment: (t, s) => {
      for (let n = s + 1n; n < BigInt(SEGMENTS); n++) if (t === 1 && have(n)) return n;
      return null;
    },
    history: () => null,
    timelines: () => [1],
    segmentTimelines: () => [1],
  };
}

const target = (name: string): TargetOptions => ({ target: { kind: 'name', name }, exclusive: false, timeline: 'latest', action: 'promote' });

async function plan(name: string, opts: { set?: string; missing?: number[]; index?: boolean } = {}) {
  const s = scenario();
  const reads: number[] = [];
  const log: string[] = [];
  const read = async (file: string) => {
    const seg = Number(parseSegmentFileName(file, SEG)!.segNo);
    reads.push(seg);
    return s.w.segment(seg);
  };
  // The archive's restore point index, as archiving records it, for every segment.
  const index = opts.index ? async (file: string) => {
    const seg = parseSegmentFileName(file, SEG)!.segNo;
    return segmentRestorePoints(seg * BigInt(SEG), s.w.segment(Number(seg))!, crc32c);
  } : undefined;
  const p = await planWithRestorePoint(s.backups, archiveOf(opts.missing), target(name), opts.set, read, (l) => log.push(l), false, index);
  return { s, p, reads, log };
}

test('a point older than the newest backups: the newest backup taken before it, each segment read about once', async () => {
  const { s, p, reads, log } = await plan('x');
  assert.equal(p.backup.id, 'B1');
  assert.equal(p.restorePoint?.lsn, s.x);
  assert.equal(p.restorePoint?.timeMs, Date.UTC(2026, 11, 1));
  assert.equal(p.walNeededTo, p.restorePoint!.end - 1n, 'replay needs the WAL to the point\'s last byte');
  assert.ok(p.restorePoint!.end > s.x);
  // B3 from segment 5; B2 from 3 up to where B3's scan began (5, read again whole); B1 from 1 to the point in 2.
  assert.deepEqual(reads, [5, 3, 4, 5, 1, 2]);
  assert.match(log.join('\n'), /looking for restore point "x" in the archive from 0\/[0-9A-F]+ along timeline 1/);
});

test('a name written twice: the first after the start of the newest backup that reaches one; --set: the first after its start', async () => {
  const newest = await plan('d');
  assert.equal(newest.p.backup.id, 'B2');
  assert.equal(newest.p.restorePoint?.lsn, newest.s.d2);
  const older = await plan('d', { set: 'B1' });
  assert.equal(older.p.backup.id, 'B1');
  assert.equal(older.p.restorePoint?.lsn, older.s.d1, 'PostgreSQL stops at the first of the name it replays');
  // Said, with the way to the earlier one (black-box run Y), from the restore point index; not with --set.
  const said = await plan('d', { index: true });
  assert.equal(said.p.restorePoint?.lsn, said.s.d2);
  assert.match(said.log.join('\n'), new RegExp(`warning: restore point "d" was also written at ${formatLsn(said.s.d1)} \\(2026-12-02T00:00:00.000Z\\), before backup B2 began: recovery from B2 stops at the later one, at ${formatLsn(said.s.d2)}.*restore backup B1 \\(--set B1\\) to stop there`));
  assert.doesNotMatch((await plan('d', { index: true, set: 'B2' })).log.join('\n'), /also written/);
  assert.doesNotMatch((await plan('x', { index: true })).log.join('\n'), /also written/);
});

test('a point written while a backup ran: an older backup; that backup itself refused by --set', async () => {
  const { s, p } = await plan('inside');
  assert.equal(p.backup.id, 'B1');
  assert.equal(p.restorePoint?.lsn, s.inside);
  await assert.rejects(plan('inside', { set: 'B2' }), /restore point "inside" \(0\/[0-9A-F]+ on timeline 1, 2026-12-03T00:00:00.000Z\) is before the point where backup B2 is consistent/);
});

test('a name not in the archive, or only past a gap: refused, naming the backups looked at', async () => {
  await assert.rejects(plan('nope'), (e: Error & { hint?: string }) => {
    assert.match(e.message, /restore point "nope" is not in the archive after the start of any of the 3 backups looked at \(oldest: B1\)/);
    assert.match(e.hint ?? '', /case-sensitive/);
    return true;
  });
  // Segment 4 lost: from B2 recovery cannot reach the second "d"; from B1 it stops at the first.
  const gap = await plan('d', { missing: [4] });
  assert.equal(gap.p.backup.id, 'B1');
  assert.equal(gap.p.restorePoint?.lsn, gap.s.d1);
  await assert.rejects(plan('x', { missing: [2] }), /restore point "x" is not in the archive after the start of any of the 3 backups looked at \(oldest: B1\): recovery would replay the WAL it can read and fail without reaching it \(read up to a gap in the archive: segment 000000010000000000000002 is missing, and later ones are archived\)/);
  // The synthetic archive's last segment is written only in part (zeros after the last record).
  await assert.rejects(plan('nope'), /\(read to segment 000000010000000000000005, where the WAL ends before the segment does \(as recovery reads it\)\)/);
});

test('a set holding its own WAL to its stop: looked for from its stop (the archive need not hold what is before)', async () => {
  const s = scenario();
  const b2 = { ...s.backups[1]!, walIncluded: true };
  const reads: number[] = [];
  const read = async (file: string) => {
    const seg = Number(parseSegmentFileName(file, SEG)!.segNo);
    reads.push(seg);
    return s.w.segment(seg);
  };
  const p = await planWithRestorePoint([s.backups[0]!, b2], archiveOf([3]), target('d'), 'B2', read, () => undefined).catch((e: Error) => e);
  // Segment 3 (the set's start and stop) is not archived: past the stop, recovery cannot read on.
  assert.ok(p instanceof Error && /restore point "d" is not in the archive after the start of backup B2: .*\(read up to a gap in the archive: segment 000000010000000000000003 is missing, and later ones are archived\)/.test(p.message), String(p));
  const whole = await planWithRestorePoint([s.backups[0]!, b2], archiveOf(), target('d'), 'B2', read, () => undefined);
  assert.equal(whole.restorePoint?.lsn, s.d2);
});

test('a set holding its own WAL that the archive holds too: looked for from its start (a point written while it ran: an older backup)', async () => {
  // "dup" written while B2 ran and again after it: recovery from B2 stops at the first, before B2 is consistent.
  const { w, at, backup } = walOf(true);
  at(1);
  const b1 = backup('B1');
  at(3);
  let first = 0n;
  const b2 = backup('B2', () => (first = w.add(restorePoint('dup', Date.UTC(2026, 11, 3)))));
  at(4);
  w.add(restorePoint('dup', Date.UTC(2026, 11, 4)));
  w.add(filler(100));
  w.closePages();
  const read = async (file: string) => w.segment(Number(parseSegmentFileName(file, SEG)!.segNo));
  const p = await planWithRestorePoint([b1, b2], archiveOf(), target('dup'), undefined, read, () => undefined);
  assert.equal(p.backup.id, 'B1');
  assert.equal(p.restorePoint?.lsn, first);
});
