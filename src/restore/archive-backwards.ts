// Reading the archive backwards for what a target needs (target-time-reach.ts,
// target-xid-reach.ts): the segments recovery can read, from the end of the run
// (plan.archiveEnd) back to the backup's start, MAX_SEGMENTS at most, each
// scanned on its own for the transactions that end in it.

import { WalRecordScanner } from '../postgres/wal-records.js';
import type { TransactionEndRecord } from '../postgres/wal-records.js';
import { crc32c } from '../storage/filter/crc32c.js';
import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { branchSpans, timelineOfSegment } from '../postgres/timeline-history.js';
import type { PlanArchive, RestorePlan } from './plan.js';
import type { ReadSegment } from './restore-point-search.js';

export const MAX_SEGMENTS = 64;

/**
 * How the reading ended: `visit` said a segment answers ('found'); a doubt ('doubt': a segment the
 * archive does not give, or cannot read, warned as `what` not checked; a transaction's record
 * running on into the next archived segment, its end not read); every segment back to the
 * backup's start read ('all'); MAX_SEGMENTS read ('limit').
 */
export type BackwardsEnd = 'found' | 'doubt' | 'all' | 'limit';

export async function readBackwards(
  plan: RestorePlan,
  archive: PlanArchive,
  read: ReadSegment,
  what: string,
  log: (line: string) => void,
  visit: (ends: TransactionEndRecord[], segment: string) => boolean,
): Promise<BackwardsEnd> {
  const size = archive.segmentSize;
  const end = parseSegmentFileName(plan.archiveEnd, size);
  if (end === null) return 'doubt';
  const spans = branchSpans(plan.branch, size);
  const first = plan.backup.startLsn / BigInt(size);
  const nameOf = (segNo: bigint): string => segmentFileName(timelineOfSegment(spans, segNo), segNo, size);
  let segNo = end.segNo;
  for (let n = 0; segNo >= first && n < MAX_SEGMENTS; segNo--, n++) {
    const name = nameOf(segNo);
    let data: Buffer | null;
    try {
      data = await read(name, [1n, 2n].filter((d) => segNo - d >= first).map((d) => nameOf(segNo - d)));
    } catch (e) {
      log(`warning: whether the archive reaches ${what} was not checked: ${(e as Error).message}`);
      return 'doubt';
    }
    if (data === null) return 'doubt';
    const ends: TransactionEndRecord[] = [];
    const scanner = new WalRecordScanner({ crc32c, onRestorePoint: () => undefined, onTransactionEnd: (x) => ends.push(x) });
    scanner.segment(segNo * BigInt(size), data);
    if (segNo < end.segNo && scanner.pendingMayEndTransaction()) return 'doubt';
    if (visit(ends, name)) return 'found';
  }
  return segNo < first ? 'all' : 'limit';
}
