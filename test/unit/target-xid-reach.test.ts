// A --target-xid whose transaction does not end in the archive after the backup
// is refused before anything is written (PostgreSQL would replay the whole
// archive and fail): the archive is read from its end back to the backup's start
// for the target's commit or abort, over synthetic WAL (test/helpers/wal-builder.ts).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { checkXidTargetReach } from '../../src/restore/target-xid-reach.js';
import type { PlanArchive, RestorePlan } from '../../src/restore/plan.js';
import type { TargetOptions } from '../../src/restore/restore-target.js';
import { parseSegmentFileName, segmentFileName } from '../../src/postgres/lsn.js';
import { timelineBranch } from '../../src/postgres/timeline-history.js';
import { SEG, WalBuilder, filler, transactionEnd } from '../helpers/wal-builder.js';

const T0 = Date.UTC(2026, 11, 5, 11, 0);

/** Segments 0-3 of WAL, a backup in segment 1, then `after`; the archive ends with segment 3. */
function laidOut(after: (w: WalBuilder, to: (segNo: number) => void) => void) {
  const w = new WalBuilder(0n, 4);
  const to = (segNo: number) => {
    while (w.next() < BigInt(segNo * SEG)) w.add(filler(3000));
  };
  w.add(transactionEnd(T0, { xid: 700 })); // before the backup: not reached by it
  to(1);
  const start = w.next();
  w.add(filler(100));
  const stop = w.next();
  after(w, to);
  w.add(filler(100));
  w.closePages();
  const plan = {
    backup: { id: 'B', complete: true, timeline: 1, startLsn: start, stopLsn: stop, stopTimeMs: T0 },
    branch: timelineBranch(1, []),
    archiveEnd: segmentFileName(1, 3n, SEG),
    gap: null,
  } as unknown as RestorePlan;
  const reads: number[] = [];
  const read = async (name: string) => {
    const s = Number(parseSegmentFileName(name, SEG)!.segNo);
    reads.push(s);
    return w.segment(s);
  };
  return { plan, read, reads, archive: { segmentSize: SEG } as PlanArchive };
}

const xid = (n: number): TargetOptions => ({ target: { kind: 'xid', xid: BigInt(n) }, exclusive: false, timeline: 'latest', action: 'promote' });

test('a transaction that ends after the backup (a commit or an abort) is reached; reading stops where it is found', async () => {
  const a = laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(T0 + 1000, { xid: 750 }));
    w.add(transactionEnd(T0 + 2000, { xid: 751, abort: true }));
    to(3);
  });
  await checkXidTargetReach(a.plan, a.archive, xid(750), a.read, () => undefined);
  assert.deepEqual(a.reads, [3, 2]);
  await checkXidTargetReach(a.plan, a.archive, xid(751), a.read, () => undefined);
});

test('one that does not end after the backup (still running, ended before it, never existed) is refused, naming the way out', async () => {
  const a = laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(T0 + 1000, { xid: 750 }));
  });
  for (const n of [760, 700, 1]) {
    await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(n), a.read, () => undefined), (e: Error & { hint?: string; code?: string }) => {
      assert.equal(e.code, 'ERR_NOT_FOUND');
      assert.match(e.message, new RegExp(`target transaction ${n} does not end in the archive after the start of backup B`));
      assert.match(e.hint ?? '', /switch WAL on the primary.*not of a subtransaction/);
      return true;
    });
  }
});

test('what leaves a doubt passes: a prepared transaction ending, a segment not given, a read that fails (with a warning), a standby-free target of another kind', async () => {
  const prepared = laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(T0 + 1000, { xid: 0, prepared: true }));
  });
  await checkXidTargetReach(prepared.plan, prepared.archive, xid(760), prepared.read, () => undefined);
  const a = laidOut(() => undefined);
  await checkXidTargetReach(a.plan, a.archive, xid(760), async () => null, () => undefined);
  const warned: string[] = [];
  await checkXidTargetReach(a.plan, a.archive, xid(760), async () => {
    throw new Error('archived WAL file "x" fails its checksum');
  }, (l) => warned.push(l));
  assert.match(warned.join('\n'), /whether the archive reaches target transaction 760 was not checked: archived WAL file "x" fails its checksum/);
  await checkXidTargetReach(a.plan, a.archive, { ...xid(1), target: { kind: 'end' } }, a.read, () => undefined);
});
