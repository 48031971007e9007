// A --target-time after the archive's last transaction is refused before
// anything is written (PostgreSQL would replay the whole archive and fail):
// the last commit or abort is read from the archive's end backwards, over
// synthetic WAL (test/helpers/wal-builder.ts).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { checkTimeTargetReach } from '../../src/restore/target-time-reach.js';
import type { RestorePlan } from '../../src/restore/plan.js';
import type { TargetOptions } from '../../src/restore/restore-target.js';
import { parseSegmentFileName, segmentFileName } from '../../src/postgres/lsn.js';
import { maxSegments } from '../../src/restore/archive-backwards.js';
import { SEG, WalBuilder, filler, transactionEnd } from '../helpers/wal-builder.js';
import { backedUpWal } from '../helpers/backed-up-wal.js';

const T0 = Date.UTC(2026, 11, 4, 11, 0);
const min = (n: number) => T0 + n * 60_000;

/** The layout of backed-up-wal.ts; the archive ends with segment `endSeg`. */
function laidOut(after: Parameters<typeof backedUpWal>[0], endSeg = 3) {
  return backedUpWal(after, { endSeg });
}

/** Transactions at minutes 1 (commit) and 2 (a long abort crossing a page) in segment 2; segment 3 idle. */
function archive() {
  return laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(min(1)));
    w.add(filler(7000));
    w.add(transactionEnd(min(2), { abort: true, size: 3000 }));
    to(3);
  });
}

const at = (ms: number): TargetOptions => ({ target: { kind: 'time', ms, text: new Date(ms).toISOString() }, exclusive: false, timeline: 'latest', action: 'promote' });

test('a target before the last transaction passes, reading the archive from its end to the last segment holding one', async () => {
  const a = archive();
  await checkTimeTargetReach(a.plan, a.archive, at(min(1) + 30_000), a.read, () => undefined);
  assert.deepEqual(a.reads, [3, 2]);
});

test('a target after the last transaction (an abort in a record crossing a page) is refused, naming it and the way out', async () => {
  const a = archive();
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(3)), a.read, () => undefined), (e: Error & { hint?: string }) => {
    assert.match(e.message, /target time .* is after the last transaction the archive holds \(an abort at 2026-12-04T11:02:00.000000Z, 0\/[0-9A-F]+, in 000000010000000000000002\)/);
    assert.match(e.hint ?? '', /switch WAL on the primary/);
    return true;
  });
});

test('along a timeline that ended (a newer one forked from it), the hint names the newer timeline rather than WAL not archived yet', async () => {
  const a = archive();
  const forked = { ...a.archive, timelines: () => [1, 2], history: (t: number) => (t === 2 ? [{ timeline: 1, switchpoint: BigInt(4 * SEG), reason: '' }] : null) };
  await assert.rejects(checkTimeTargetReach(a.plan, forked, at(min(3)), a.read, () => undefined), (e: Error & { hint?: string }) => {
    assert.match(e.hint ?? '', /^timeline 1 ended at 0\/[0-9A-F]+, where timeline 2 began, .*restore with --target-timeline 2/);
    assert.doesNotMatch(e.hint ?? '', /switch WAL/);
    return true;
  });
  // Forked later than the archive's end: the WAL before the fork is missing, which timeline 2 lacks too.
  const later = { ...a.archive, timelines: () => [1, 2], history: (t: number) => (t === 2 ? [{ timeline: 1, switchpoint: BigInt(6 * SEG), reason: '' }] : null) };
  await assert.rejects(checkTimeTargetReach(a.plan, later, at(min(3)), a.read, () => undefined), (e: Error & { hint?: string }) => /switch WAL on the primary/.test(e.hint ?? ''));
});

test('a target at the last transaction\'s own time: refused (all that share it are replayed), reached with --target-exclusive; to the microsecond', async () => {
  const a = archive();
  const last = min(2);
  // Said as equal, to the microsecond (black-box run Y: "after", to the millisecond, hid that).
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(last), a.read, () => undefined), /is the time of the last transaction the archive holds \(an abort at 2026-12-04T11:02:00.000000Z/);
  await checkTimeTargetReach(a.plan, a.archive, { ...at(last), exclusive: true }, a.read, () => undefined);
  // 500 microseconds after it, within its millisecond: past it, either way.
  const micro = (exclusive: boolean): TargetOptions => ({ ...at(last), target: { kind: 'time', ms: last, text: '2026-12-04 11:02:00.0005+00' }, exclusive });
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, micro(false), a.read, () => undefined), /is after the last transaction/);
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, micro(true), a.read, () => undefined), /is after the last transaction/);
  // 500 microseconds before it: reached.
  await checkTimeTargetReach(a.plan, a.archive, { ...at(last), target: { kind: 'time', ms: last - 1, text: '2026-12-04 11:01:59.9995+00' } }, a.read, () => undefined);
});

test('no transaction after the backup: refused; a segment the archive does not give: nothing said', async () => {
  const a = archive();
  a.plan.archiveEnd = segmentFileName(1, 1n, SEG);
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(3)), a.read, () => undefined), /the archive holds no transaction ended after the start of backup B/);
  const b = archive();
  await checkTimeTargetReach(b.plan, b.archive, at(min(3)), async () => null, () => undefined);
});

test('a commit whose record runs on into the next archived segment counts there (its time read from both); into a segment not archived: not counted (black-box run U1)', async () => {
  const crossing = (at: number, size: number) => (w: WalBuilder, to: (segNo: number) => void) => {
    w.add(transactionEnd(min(1)));
    to(2);
    w.padTo(BigInt(3 * SEG - at));
    w.add(transactionEnd(min(5), { size }));
    w.add(transactionEnd(min(4))); // later in WAL, wholly in segment 3, earlier in time
  };
  for (const [at_, size] of [[200, 3000], [8, 100], [24, 40]] as const) {
    // Its header whole (200 bytes before the boundary), or cut by it (8, 24 bytes: the record's kind not in segment 2).
    const a = laidOut(crossing(at_, size));
    await checkTimeTargetReach(a.plan, a.archive, at(min(3)), a.read, () => undefined);
    await checkTimeTargetReach(a.plan, a.archive, at(min(4) + 30_000), a.read, () => undefined);
    // Before, the crossing record made a doubt that passed every target: the server then failed after the whole replay.
    await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(6)), a.read, () => undefined), /target time .* is after the last transaction the archive holds \(a commit at 2026-12-04T11:05:00.000000Z, 0\/[0-9A-F]+, in 000000010000000000000002\)/);
  }
  const b = laidOut(crossing(200, 3000), 2);
  await assert.rejects(checkTimeTargetReach(b.plan, b.archive, at(min(3)), b.read, () => undefined), /after the last transaction the archive holds \(a commit at 2026-12-04T11:01:00.000000Z/);
});

test('a commit crossing into the next segment and lost in a crash (that segment begins with OVERWRITE_CONTRECORD) does not count (black-box run W)', async () => {
  const a = laidOut((w, to) => {
    w.add(transactionEnd(min(1)));
    to(2);
    w.padTo(BigInt(3 * SEG - 200));
    const prev = w.last!;
    w.add(transactionEnd(min(5), { size: 3000 }));
    w.breakOff(prev);
    w.add(transactionEnd(min(2)));
  });
  await checkTimeTargetReach(a.plan, a.archive, at(min(1) + 30_000), a.read, () => undefined);
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(4)), a.read, () => undefined), /after the last transaction the archive holds \(a commit at 2026-12-04T11:02:00.000000Z/);
});

test('no transaction within the segments read (64, or 1 GiB of smaller ones): passed with a warning (black-box run W)', async () => {
  const a = archive();
  const end = 1100; // past the 1,024 segments read at most with this test's small segments
  const idle = (segNo: number) => {
    const w = new WalBuilder(BigInt(segNo * SEG), 1);
    while (w.next() < BigInt((segNo + 1) * SEG - 3300)) w.add(filler(3000));
    w.closePages();
    return w.segment(0);
  };
  const reads: number[] = [];
  const read = async (name: string) => {
    const segNo = Number(parseSegmentFileName(name, SEG)!.segNo);
    reads.push(segNo);
    return segNo <= 3 ? a.read(name) : idle(segNo);
  };
  const plan = { ...a.plan, archiveEnd: segmentFileName(1, BigInt(end), SEG) };
  const said: string[] = [];
  await checkTimeTargetReach(plan, a.archive, at(min(3)), read, (l) => said.push(l));
  assert.equal(reads.length, maxSegments(SEG));
  assert.match(said.join('\n'), /warning: whether the archive reaches target time .* was not checked: no transaction ends in its newest 1024 segments/);
});

test('clocks stepping back (a commit later in WAL stamped earlier): the reading goes on back and finds the one after the target', async () => {
  const a = laidOut((w, to) => {
    w.add(transactionEnd(min(1)));
    to(2);
    w.add(transactionEnd(min(4)));
    to(3);
    w.add(transactionEnd(min(2)));
  });
  await checkTimeTargetReach(a.plan, a.archive, at(min(3)), a.read, () => undefined);
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(5)), a.read, () => undefined), /a commit at 2026-12-04T11:04:00.000000Z/);
});

test('a gap after the run is named; a segment that cannot be read leaves the target unchecked, with a warning', async () => {
  const a = laidOut((w) => w.add(transactionEnd(min(1))));
  (a.plan as { gap: RestorePlan['gap'] }).gap = { missing: segmentFileName(1, 4n, SEG), resumesAt: segmentFileName(1, 5n, SEG) };
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(3)), a.read, () => undefined), (e: Error & { hint?: string }) => {
    assert.match(e.message, /the archive has a gap \(segment 000000010000000000000004 is missing, later ones are archived\) where recovery ends/);
    assert.match(e.hint ?? '', /restore the missing segment 000000010000000000000004/);
    return true;
  });
  const warned: string[] = [];
  await checkTimeTargetReach(a.plan, a.archive, at(min(3)), async () => {
    throw new Error('archived WAL file "x" fails its checksum');
  }, (l) => warned.push(l));
  assert.match(warned.join('\n'), /warning: whether the archive reaches target time .* was not checked: archived WAL file "x" fails its checksum/);
});
