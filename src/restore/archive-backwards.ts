// Reading the archive backwards for what a target needs (target-time-reach.ts,
// target-xid-reach.ts): the segments recovery can read, from the end of the run
// (plan.archiveEnd) back to the backup's start, maxSegments at most, each
// scanned for the transactions that end in it, and for one whose record begins
// in it and ends in the next (read just before), whose time and xid count here.

import { WalRecordScanner } from '../postgres/wal-records.js';
import type { TransactionEndRecord } from '../postgres/wal-records.js';
import { crc32c } from '../storage/filter/crc32c.js';
import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { branchSpans, timelineOfSegment } from '../postgres/timeline-history.js';
import type { PlanArchive, RestorePlan } from './plan.js';
import type { ReadSegment } from './restore-point-search.js';

/** How many segments are read at most: 64, or 1 GiB of WAL with smaller segments (1,024 of 1 MiB, the smallest). */
export function maxSegments(segmentSize: number): number {
  return Math.min(1024, Math.max(64, Math.floor(2 ** 30 / segmentSize)));
}

/**
 * How the reading ended: `visit` said a segment answers ('found'); a doubt ('doubt': a segment the
 * archive does not give, or cannot read, warned as `what` not checked; a transaction's record
 * running on into the next archived segment whose end could not be read there); every segment back to the
 * backup's start read ('all'); maxSegments read ('limit').
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
  // The segment after this one, read just before (reading backwards): where a record this one ends
  // with goes on.
  let later: Buffer | null = null;
  const most = maxSegments(size);
  for (let n = 0; segNo >= first && n < most; segNo--, n++) {
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
    if (scanner.segment(segNo * BigInt(size), data) === 'next' && segNo < end.segNo && scanner.pendingMayEndTransaction()) {
      // A commit or abort running on into the next segment (common under load): read to its end there,
      // keeping only it (the next segment's own were seen already). The next segment's WAL invalid
      // there: recovery does not replay it either. Still unfinished: a doubt, as before.
      const crossing = scanner.pendingStart();
      if (later === null) return 'doubt';
      const boundary = (segNo + 1n) * BigInt(size);
      scanner.segment(boundary, continuation(later, scanner.pendingRemaining()!));
      if (scanner.pendingStart() === crossing) return 'doubt';
      for (let i = ends.length - 1; i >= 0; i--) if (ends[i]!.lsn >= boundary) ends.splice(i, 1);
    }
    later = data;
    if (visit(ends, name)) return 'found';
  }
  return segNo < first ? 'all' : 'limit';
}

/**
 * The first pages of `segment` that hold the `remaining` bytes of a record begun in the segment
 * before: each page gives at least its size less a long header and an alignment's worth.
 */
function continuation(segment: Buffer, remaining: number): Buffer {
  const blockSize = segment.length >= 40 ? segment.readUInt32LE(36) : 0;
  if (blockSize < 1024 || segment.length % blockSize !== 0) return segment;
  const pages = Math.ceil(remaining / (blockSize - 48)) + 1;
  return segment.subarray(0, Math.min(segment.length, pages * blockSize));
}
