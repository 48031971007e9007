// A --target-lsn the archive cannot reach, found before anything is written.
// PostgreSQL stops a recovery to an LSN at the first record that begins at or
// after it (before it, or after it with the target inclusive), and reads that
// record whole first. The plan (plan.ts) asks for the segments up to the
// target's; the record may begin in the next one: the target was the end of
// the WAL written so far, or it falls in the empty rest of a segment after a
// WAL switch (pg_switch_wal() returns a position there). Then the next segment
// must be archived too, or recovery replays everything and fails ("recovery
// ended before configured recovery target was reached") once the copy is written.
//
// The target's segment is read; what leaves a doubt (the segment not readable
// from the archive, the WAL ending inside it) passes.

import { PgpitrError } from '../common/errors.js';
import { formatLsn, segmentFileName } from '../postgres/lsn.js';
import { branchSpans, timelineOfSegment } from '../postgres/timeline-history.js';
import { WalRecordScanner } from '../postgres/wal-records.js';
import { crc32c } from '../storage/filter/crc32c.js';
import type { PlanArchive, RestorePlan } from './plan.js';
import type { ReadSegment } from './restore-point-search.js';
import type { TargetOptions } from './restore-target.js';

export async function checkLsnTargetReach(plan: RestorePlan, archive: PlanArchive, t: TargetOptions, read: ReadSegment, log: (line: string) => void): Promise<void> {
  if (t.target.kind !== 'lsn' || t.target.lsn <= plan.backup.stopLsn) return;
  const target = Number(t.target.lsn);
  const size = archive.segmentSize;
  const spans = branchSpans(plan.branch, size);
  const segNo = t.target.lsn / BigInt(size);
  const name = segmentFileName(timelineOfSegment(spans, segNo), segNo, size);
  let data: Buffer | null;
  try {
    data = await read(name);
  } catch (e) {
    log(`warning: whether the archive holds the record at target LSN ${formatLsn(t.target.lsn)} was not checked: ${(e as Error).message}`);
    return;
  }
  if (data === null) return;
  let found = false;
  const scanner = new WalRecordScanner({ crc32c, onRestorePoint: () => undefined, onRecord: (lsn) => void (found ||= lsn >= target) });
  const scan = scanner.segment(segNo * BigInt(size), data);
  if (found) return;
  const pending = scanner.pendingStart();
  // The WAL ends inside the segment (a timeline's last, cut where the next begins): not judged here.
  if (scan === 'end' && pending === null) return;
  const nextNo = segNo + 1n;
  const tli = timelineOfSegment(spans, nextNo);
  if (archive.hasSegment(tli, nextNo)) return;
  const next = segmentFileName(tli, nextNo, size);
  const where = pending !== null && pending >= target ? `the record that begins at ${formatLsn(BigInt(pending))} runs on into WAL segment ${next}` : `no record begins at or after it in ${name}: the next is in WAL segment ${next}`;
  throw new PgpitrError('ERR_NOT_FOUND', `target LSN ${formatLsn(t.target.lsn)} cannot be reached from the archive: PostgreSQL stops at the first record at or after it once it has read it whole, and ${where}, which is not archived`, {
    hint: 'switch WAL on the primary and wait for it to be archived (pgpitr check does both), then restore again; or give an earlier LSN (pg_switch_wal() returns a position after its own record, where no record may ever begin in that segment)',
  });
}
