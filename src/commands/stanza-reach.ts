// What info and check both ask of a stanza: restore's plan applied to every
// complete backup against the archive as listed (restore/recovery-window.ts).
// A history file that cannot be read (damaged, undecryptable) is reported, not
// fatal: the report is what must find it. So is a WAL file stored with two contents.

import { fetchWalFile } from '../repo/archive-store.js';
import type { ArchivedFile } from '../repo/archive-store.js';
import type { BackupRecord } from '../repo/backup-set/record.js';
import type { Repository } from '../repo/repository.js';
import { planArchiveOf, planBackupOf } from '../restore/plan-inputs.js';
import { judgeLatest, LatestTimelineDoubt } from '../restore/latest-timeline.js';
import type { PlanArchive } from '../restore/plan.js';
import { recoveryReach } from '../restore/recovery-window.js';
import type { RecoveryReach } from '../restore/recovery-window.js';
import { gapsBetweenTimelines } from '../restore/timeline-gaps.js';
import { missingObjects } from '../repo/backup-set/stored-objects.js';
import { isPgpitrError } from '../common/errors.js';
import type { TimelineGap } from '../restore/timeline-gaps.js';

export async function stanzaReach(
  repo: Repository,
  stanza: string,
  segmentSize: number,
  files: ArchivedFile[],
  records: BackupRecord[],
): Promise<RecoveryReach & { unreadable: string[]; timelineGaps: TimelineGap[]; conflicting: string[]; latestDoubt: LatestTimelineDoubt | null }> {
  const { archive, names, unreadable, conflicting } = await stanzaArchive(repo, stanza, segmentSize, files);
  // Whether a restore with its defaults (no --set, the latest timeline) refuses the latest timeline
  // as maybe not this cluster's present (a copy promoted elsewhere archiving into the stanza).
  let latestDoubt: LatestTimelineDoubt | null = null;
  try {
    judgeLatest(records.filter((r) => r.state === 'complete').map(planBackupOf), archive);
  } catch (e) {
    // A history that cannot be read is reported with the backups it concerns (recoveryReach), not here.
    if (e instanceof LatestTimelineDoubt) latestDoubt = e;
    else if (!isPgpitrError(e)) throw e;
  }
  // The newest backups the archive would restore, newest first, until one has every stored object
  // (and a manifest that reads): what a restore without --set chooses is not called restorable
  // when its files are gone (a lifecycle rule, a removal by hand, a damaged manifest).
  const known = new Map<string, string>();
  for (;;) {
    const reach = recoveryReach(records, archive, known);
    const newest = [...records].reverse().find((r) => r.state === 'complete' && reach.problems.get(r.id) === null);
    const missing = newest === undefined ? null : await missingObjects(repo.storage, stanza, newest.id);
    if (missing === null) return { ...reach, unreadable: unreadable.map((u) => `${u.name}: ${u.message}`), timelineGaps: gapsBetweenTimelines(archive, names), conflicting, latestDoubt };
    known.set(newest!.id, missing);
  }
}

/** The archive as restore's plan reads it, from its listing: history files read, names stored with two contents left out. */
export async function stanzaArchive(
  repo: Repository,
  stanza: string,
  segmentSize: number,
  files: ArchivedFile[],
): Promise<{ archive: PlanArchive; names: string[]; unreadable: { name: string; message: string }[]; conflicting: string[] }> {
  const unreadable: { name: string; message: string }[] = [];
  const readHistory = (n: string) =>
    fetchWalFile(repo, stanza, n).catch((e: Error) => {
      unreadable.push({ name: n, message: e.message });
      return null;
    });
  // A name stored twice with different content (two clusters archiving into the stanza, a
  // split brain): archive-get refuses it (exit 200), so recovery stops there: not present.
  const contents = new Map<string, Set<string>>();
  for (const f of files) contents.set(f.name, (contents.get(f.name) ?? new Set()).add(f.sha256));
  const conflicting = [...contents].filter(([, c]) => c.size > 1).map(([name]) => name);
  const conflict = new Set(conflicting);
  const names = files.map((f) => f.name).filter((n) => !conflict.has(n));
  // When each file was stored: what restore judges the latest timeline by (restore/latest-timeline.ts).
  const storedAt = new Map(files.map((f) => [f.name, f.mtimeMs]));
  const archive = await planArchiveOf({ names: () => names, readHistory, storedMs: (n) => storedAt.get(n) }, segmentSize);
  return { archive, names, unreadable, conflicting };
}
