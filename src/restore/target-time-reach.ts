// A --target-time the archive cannot reach, found before anything is written.
// PostgreSQL stops a recovery to a time at the first commit or abort later than
// it (at or later, with --target-exclusive), to the microsecond; when the archive holds none, recovery
// replays all of it and fails ("recovery ended before configured recovery target
// was reached") once the copy is written and the WAL replayed. The usual cause: a
// restore to a moment ago, whose WAL is still in the primary's current segment.
//
// The archive's last transactions are read from the end of the run recovery can
// read (plan.archiveEnd) backwards. A transaction ending after the target: the
// target is reached. Otherwise the reading goes on back (clocks can step back: a
// failover to a server whose clock is behind) to the backup's start or
// maxSegments, and only then refuses (past maxSegments, saying how to go round
// a clock that was ahead). What leaves a doubt passes: a transaction's record
// running on into the next segment whose end cannot be read there, a segment
// that cannot be read (a warning), no transaction within maxSegments (a warning).

import type { TransactionEndRecord } from '../postgres/wal-records.js';
import { PgpitrError } from '../common/errors.js';
import { formatLsn, parseSegmentFileName } from '../postgres/lsn.js';
import { historiesOf, timelineEndedHint } from './plan-refusals.js';
import { maxSegments, readBackwards } from './archive-backwards.js';
import type { PlanArchive, RestorePlan } from './plan.js';
import type { ReadSegment } from './restore-point-search.js';
import type { TargetOptions } from './restore-target.js';
import { targetTimeMicros } from './restore-target.js';

interface Newest {
  lsn: bigint;
  timeUs: bigint;
  commit: boolean;
  segment: string;
}

export async function checkTimeTargetReach(plan: RestorePlan, archive: PlanArchive, t: TargetOptions, read: ReadSegment, log: (line: string) => void): Promise<void> {
  if (t.target.kind !== 'time') return;
  // To the microsecond, as the server compares: with --target-exclusive it stops at a transaction
  // that ended at the target or later, else at one that ended strictly later (never at one that
  // ended at the target itself: all that share its time are replayed).
  const targetUs = targetTimeMicros(t.target.text, t.target.ms);
  const reaches = (us: bigint): boolean => (t.exclusive ? us >= targetUs : us > targetUs);
  const seen: { newest: Newest | null } = { newest: null };
  const ended = await readBackwards(plan, archive, read, `target time ${t.target.text}`, log, (ends, segment) => {
    const last = ends.reduce<TransactionEndRecord | null>((m, x) => (m === null || x.timeUs > m.timeUs ? x : m), null);
    if (last === null) return false;
    if (reaches(last.timeUs)) return true;
    if (seen.newest === null || last.timeUs > seen.newest.timeUs) seen.newest = { ...last, segment };
    return false;
  });
  if (ended === 'found' || ended === 'doubt') return;
  const newest = seen.newest;
  const allRead = ended === 'all';
  if (newest === null && !allRead) {
    if (ended === 'limit') log(`warning: whether the archive reaches target time ${t.target.text} was not checked: no transaction ends in its newest ${maxSegments(archive.segmentSize)} segments; if none ends after the target, recovery fails once the copy is written`);
    return;
  }
  const gap = plan.gap ? `; after it the archive has a gap (segment ${plan.gap.missing} is missing, later ones are archived) where recovery ends` : '';
  const stops = `PostgreSQL stops a recovery to a time at the first transaction that ended after it, so recovery would replay the WAL it can read and fail without reaching it${gap}`;
  // Read back maxSegments, not to the backup: a server whose clock was ahead (before a failover)
  // may have stamped earlier WAL later than this; the target given another way is not compared with times.
  const clocks = allRead ? '' : `; this was judged from the last ${maxSegments(archive.segmentSize)} segments: if a server's clock was ahead of the one that wrote them (a failover), give the target as --target-lsn or --target-xid`;
  const hint = (plan.gap
    ? `restore the missing segment ${plan.gap.missing} into the archive (from the server's pg_wal, or another repository), or choose a target before ${newest ? new Date(Number(newest.timeUs / 1000n)).toISOString() : 'the gap'}`
    : (timelineEndedHint(plan.branch, historiesOf(archive), parseSegmentFileName(plan.archiveEnd, archive.segmentSize)!.segNo + 1n, archive.segmentSize) ?? 'the WAL past that point has not been archived yet: switch WAL on the primary and wait for it to be archived (pgpitr check does both), then restore again; if nothing was committed since, the state at the target is the end of the archive: restore without a target')) + clocks;
  if (newest === null) {
    throw new PgpitrError('ERR_NOT_FOUND', `target time ${t.target.text} cannot be reached: the archive holds no transaction ended after the start of backup ${plan.backup.id} (to ${plan.archiveEnd}); ${stops}`, { hint });
  }
  // To the microsecond, as compared: a target equal to it must not read as one after it.
  const when = new Date(Number(newest.timeUs / 1000n)).toISOString().replace(/Z$/, `${String(newest.timeUs % 1000n).padStart(3, '0')}Z`);
  const relation = newest.timeUs === targetUs ? 'is the time of' : 'is after';
  throw new PgpitrError('ERR_NOT_FOUND', `target time ${t.target.text} ${relation} the last transaction the archive holds (${newest.commit ? 'a commit' : 'an abort'} at ${when}, ${formatLsn(newest.lsn)}, in ${newest.segment}): ${stops}`, { hint });
}
