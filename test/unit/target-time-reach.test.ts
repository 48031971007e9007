// A --target-time after the archive's last transaction is refused before
// anything is written (PostgreSQL would replay the whole archive and fail):
// the last commit or abort is read from the archive's end backwards, over
// synthetic WAL (test/helpers/wal-builder.ts).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { checkTimeTargetReach } from '../../src/restore/target-time-reach.js';
import type { PlanArchive, RestorePlan } from '../../src/restore/plan.js';
import type { TargetOptions } from '../../src/restore/restore-target.js';
import { parseSegmentFileName, segmentFileName } from '../../src/postgres/lsn.js';
import { timelineBranch } from '../../src/postgres/timeline-history.js';
import { SEG, WalBuilder, filler, transactionEnd } from '../helpers/wal-builder.js';

const T0 = Date.UTC(2026, 11, 4, 11, 0);
const min = (n: number) => T0 + n * 60_000;

/** Backup in segment 1; transactions at minutes 1 (commit), 2 (a long abort crossing a page) in segment 2; segment 3 idle. */
function archive() {
  const w = new WalBuilder(0n, 4);
  const to = (segNo: number) => {
    while (w.next() < BigInt(segNo * SEG)) w.add(filler(3000));
  };
  to(1);
  const start = w.next();
  w.add(filler(100));
  const stop = w.next();
  to(2);
  w.add(transactionEnd(min(1)));
  w.add(filler(7000));
  w.add(transactionEnd(min(2), { abort: true, size: 3000 }));
  to(3);
  w.add(filler(100));
  w.closePages();
  const plan = {
    backup: { id: 'B', complete: true, timeline: 1, startLsn: start, stopLsn: stop, stopTimeMs: T0 },
    branch: timelineBranch(1, []),
    archiveEnd: segmentFileName(1, 3n, SEG),
  } as RestorePlan;
  const reads: number[] = [];
  const read = async (name: string) => {
    const s = Number(parseSegmentFileName(name, SEG)!.segNo);
    reads.push(s);
    return w.segment(s);
  };
  return { plan, read, reads, archive: { segmentSize: SEG } as PlanArchive };
}

const at = (ms: number): TargetOptions => ({ target: { kind: 'time', ms, text: new Date(ms).toISOString() }, exclusive: false, timeline: 'latest', action: 'promote' });

test('a target before the last transaction passes, reading the archive from its end to the last segment holding one', async () => {
  const a = archive();
  await checkTimeTargetReach(a.plan, a.archive, at(min(1) + 30_000), a.read);
  assert.deepEqual(a.reads, [3, 2]);
});

test('a target after the last transaction (an abort in a record crossing a page) is refused, naming it and the way out', async () => {
  const a = archive();
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(3)), a.read), (e: Error & { hint?: string }) => {
    assert.match(e.message, /target time .* is after the last transaction the archive holds \(an abort at 2026-12-04T11:02:00.000Z, 0\/[0-9A-F]+, in 000000010000000000000002\)/);
    assert.match(e.hint ?? '', /switch WAL on the primary/);
    return true;
  });
});

test('no transaction after the backup: refused; a segment the archive does not give: nothing said', async () => {
  const a = archive();
  a.plan.archiveEnd = segmentFileName(1, 1n, SEG);
  await assert.rejects(checkTimeTargetReach(a.plan, a.archive, at(min(3)), a.read), /the archive holds no transaction ended after the start of backup B/);
  const b = archive();
  await checkTimeTargetReach(b.plan, b.archive, at(min(3)), async () => null);
});
