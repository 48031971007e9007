// A --target-xid the archive cannot reach, found before anything is written.
// PostgreSQL stops a recovery to a transaction at its commit or abort record
// (the record's top-level transaction ID); when the archive after the backup
// holds none (the transaction has not ended yet, ended before the backup, is
// a subtransaction, or never existed), recovery replays all of it and fails
// ("recovery ended before configured recovery target was reached") once the
// copy is written.
//
// The archive is read from the end of the run recovery can read back to the
// backup's start (archive-backwards.ts). The target's end found: it
// is reached. What leaves a doubt passes: more segments than that, a segment
// that cannot be read (a warning), a record running on into the next segment
// (its ID not read), a prepared transaction's end whose ID (in its data) could not be read.

import { PgpitrError } from '../common/errors.js';
import { formatLsn } from '../postgres/lsn.js';
import { readBackwards } from './archive-backwards.js';
import type { PlanArchive, RestorePlan } from './plan.js';
import type { ReadSegment } from './restore-point-search.js';
import type { TargetOptions } from './restore-target.js';

export async function checkXidTargetReach(plan: RestorePlan, archive: PlanArchive, t: TargetOptions, read: ReadSegment, log: (line: string) => void): Promise<void> {
  if (t.target.kind !== 'xid') return;
  // Recovery compares the record's 32-bit ID (plan.ts refuses a target a wraparound makes ambiguous).
  const want = Number(t.target.xid % 2n ** 32n);
  // Its end before the backup's end, where the copy is consistent (a backup recorded without its transaction horizon, plan.ts): recovery meets it too early, or never.
  let inside: bigint | null = null;
  // A subtransaction's ID is never stopped at (black-box run Y: a released savepoint's): its top-level one's end, when read.
  let parent: { xid: number; lsn: bigint; commit: boolean } | null = null;
  const ended = await readBackwards(plan, archive, read, `target transaction ${t.target.xid}`, log, (ends) =>
    ends.some((x) => {
      if (x.xid === want && x.lsn < plan.backup.stopLsn) inside = x.lsn;
      if (x.xid !== null && x.subxacts.includes(want)) parent ??= { xid: x.xid, lsn: x.lsn, commit: x.commit };
      return x.xid === want || x.xid === null;
    }),
  );
  if (inside !== null) {
    throw new PgpitrError('ERR_NOT_FOUND', `target transaction ${t.target.xid} ended at ${formatLsn(inside)}, before backup ${plan.backup.id} is consistent (from ${formatLsn(plan.backup.stopLsn)}): recovery from it would meet it too early, or never, and fail`, {
      hint: 'restore an older backup (--set ID; pgpitr info lists them), or give a later target',
    });
  }
  // A backup that ended after the transaction began (plan.ts chose it for want of one that ended
  // before it began, or --set): reached only if it ended after the stop, not seen in what was read.
  if (plan.backup.stopNextXid !== undefined && plan.backup.stopNextXid > t.target.xid && ended !== 'found' && ended !== 'all') {
    log(`warning: target transaction ${t.target.xid} began before backup ${plan.backup.id} ended, and where it ended was not seen in the newest segments of the archive: recovery from that backup reaches it only if it ended after ${formatLsn(plan.backup.stopLsn)}, else it fails once the copy is written (give the target as --target-time or --target-lsn of its commit to be sure)`);
    return;
  }
  if (ended === 'limit') log(`warning: whether the archive reaches target transaction ${t.target.xid} was checked in the newest segments only; if it never ends there, recovery fails once the copy is written`);
  if (ended !== 'all') return;
  const top = parent as { xid: number; lsn: bigint; commit: boolean } | null;
  if (top !== null) {
    throw new PgpitrError('ERR_NOT_FOUND', `target transaction ${t.target.xid} is a subtransaction that ended with transaction ${top.xid} (32-bit ID; its ${top.commit ? 'commit' : 'abort'} at ${formatLsn(top.lsn)} lists it): PostgreSQL stops a recovery to a transaction only at a record of its own ID, and a subtransaction released into another has none, so recovery would replay the WAL it can read and fail without reaching it`, {
      hint: `give --target-xid ${top.xid} (with its epoch if the stanza spans several), or --target-lsn ${formatLsn(top.lsn)}`,
    });
  }
  const gap = plan.gap ? `; after it the archive has a gap (segment ${plan.gap.missing} is missing, later ones are archived) where recovery ends` : '';
  throw new PgpitrError('ERR_NOT_FOUND', `target transaction ${t.target.xid} does not end in the archive after the start of backup ${plan.backup.id} (to ${plan.archiveEnd})${gap}: PostgreSQL stops a recovery to a transaction at its commit or abort, so recovery would replay the WAL it can read and fail without reaching it`, {
    hint: plan.gap
      ? `restore the missing segment ${plan.gap.missing} into the archive, or choose another target`
      : `if the transaction has ended since, switch WAL on the primary and wait for it to be archived (pgpitr check does both), then restore again; give the ID of a top-level transaction (pg_current_xact_id() in it, or the xid pg_waldump shows on its COMMIT record), not of a subtransaction${archive.timelines().length > 1 ? `; one that ended on another timeline than ${plan.branch.timeline} (a branch a point-in-time recovery left behind: pgpitr info lists the timelines) needs --target-timeline` : ''}`,
  });
}
