// A restore point name written more than once: PostgreSQL does not refuse it,
// and stops at the first of that name it replays after the backup's start. The
// plan picks the newest backup that reaches the name, so with a backup taken
// between two of them, recovery stops at the later one, where PostgreSQL from
// an older backup stops at the earlier one (black-box run Y). Said, with the
// way to the earlier one: looked for between the next older backup on the
// branch and the chosen one, in the archive's restore point index only (a
// segment it has no record for ends the look: no segment is read for this).

import { formatLsn, segmentFileName } from '../postgres/lsn.js';
import { branchSpans, timelineAt, timelineOfSegment } from '../postgres/timeline-history.js';
import type { PlanArchive, PlanBackup, RestorePlan } from './plan.js';
import type { SegmentRestorePoints } from '../postgres/segment-restore-points.js';

/** Segments looked at, at most (4 GiB of 16 MiB segments: one directory of the archive), and asked for at once. */
const MAX_SEGMENTS = 256n;
const AT_ONCE = 16;

export async function warnOfEarlierRestorePoint(plan: RestorePlan, backups: readonly PlanBackup[], archive: PlanArchive, name: string, index: ((segment: string) => Promise<SegmentRestorePoints | undefined>) | undefined, log: (line: string) => void): Promise<void> {
  const later = plan.restorePoint;
  const b = plan.backup;
  if (!later || index === undefined) return;
  const branch = plan.branch;
  const older = backups
    .filter((o) => o.complete && o.id !== b.id && o.startLsn < b.startLsn && timelineAt(branch, o.stopLsn) === o.timeline)
    .reduce<PlanBackup | null>((m, o) => (m === null || o.startLsn > m.startLsn ? o : m), null);
  if (older === null) return;
  const size = BigInt(archive.segmentSize);
  const spans = branchSpans(branch, archive.segmentSize);
  const first = older.startLsn / size;
  const last = b.startLsn / size;
  if (last - first >= MAX_SEGMENTS) return;
  const names: string[] = [];
  for (let segNo = first; segNo <= last; segNo++) {
    const tl = timelineOfSegment(spans, segNo);
    if (!archive.hasSegment(tl, segNo)) return;
    names.push(segmentFileName(tl, segNo, archive.segmentSize));
  }
  for (let i = 0; i < names.length; i += AT_ONCE) {
    // A record that cannot be read ends the look: this says more, it never stops a restore.
    const known = await Promise.all(names.slice(i, i + AT_ONCE).map((n) => index(n).catch(() => undefined)));
    const gap = known.findIndex((k) => k === undefined);
    const p = known.slice(0, gap < 0 ? known.length : gap).flatMap((k) => k!.points).find((x) => x.name === name && x.lsn >= older.startLsn && x.lsn < later.lsn);
    if (p === undefined) {
      if (gap >= 0) return;
      continue;
    }
    // As the plan judges it (plan.ts): a point ending at or after the backup's stop is reached from it.
    const way = p.end >= older.stopLsn ? `restore backup ${older.id} (--set ${older.id}) to stop there` : `backup ${older.id} began before it and is consistent only after it: give --target-lsn ${formatLsn(p.lsn)} to stop there (or --set an older backup that began before it)`;
    log(`warning: restore point "${name}" was also written at ${formatLsn(p.lsn)} (${new Date(p.timeMs).toISOString()}), before backup ${b.id} began: recovery from ${b.id} stops at the later one, at ${formatLsn(later.lsn)}, as PostgreSQL stops at the first of a name it replays after the backup's start; ${way}`);
    return;
  }
}
