// Segments 0-3 of WAL laid out by wal-builder.ts with a backup in segment 1,
// then what a test puts after it, as the restore plan and the target reach
// checks (restore/archive-backwards.ts) read them: the plan, a segment reader
// that records which segments were read, and the archive's segment size.

import type { PlanArchive, RestorePlan } from '../../src/restore/plan.js';
import { parseSegmentFileName, segmentFileName } from '../../src/postgres/lsn.js';
import { timelineBranch } from '../../src/postgres/timeline-history.js';
import { SEG, WalBuilder, filler } from './wal-builder.js';

/**
 * `before` writes ahead of the backup (in segment 0), `during` between its start and its stop, `after` after its stop (`to(n)`: filler up
 * to segment n); the archive ends with segment `endSeg`; `reads` lists the segments read.
 */
export function backedUpWal(after: (w: WalBuilder, to: (segNo: number) => void) => void, opts: { endSeg?: number; before?: (w: WalBuilder) => void; during?: (w: WalBuilder) => void } = {}) {
  const w = new WalBuilder(0n, 4);
  const to = (segNo: number) => {
    while (w.next() < BigInt(segNo * SEG)) w.add(filler(3000));
  };
  opts.before?.(w);
  to(1);
  const start = w.next();
  w.add(filler(100));
  opts.during?.(w);
  const stop = w.next();
  after(w, to);
  w.add(filler(100));
  w.closePages();
  const plan = {
    backup: { id: 'B', complete: true, timeline: 1, startLsn: start, stopLsn: stop, stopTimeMs: 0 },
    branch: timelineBranch(1, []),
    archiveEnd: segmentFileName(1, BigInt(opts.endSeg ?? 3), SEG),
    gap: null,
  } as unknown as RestorePlan;
  const reads: number[] = [];
  const read = async (name: string) => {
    const s = Number(parseSegmentFileName(name, SEG)!.segNo);
    reads.push(s);
    return w.segment(s);
  };
  return { plan, read, reads, archive: { segmentSize: SEG, timelines: () => [1], history: () => null } as unknown as PlanArchive };
}
