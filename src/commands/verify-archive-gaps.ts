// verify's question about the archive as a whole: is WAL missing that a point-in-time recovery
// past a backup would replay? The archive's gaps as check judges them (archive-gaps.ts), from
// the oldest complete backup's start on: no restore reads older WAL. A gap whose next segment
// was stored less than a minute ago is passed (pushes in parallel store out of order). One
// problem per gap, as pgBackRest's verify reports ranges: its first missing segment, how many,
// and where archived WAL resumes.

import { parseLsn, parseSegmentFileName, segmentFileName, segmentNumber } from '../postgres/lsn.js';
import type { ArchivedFile } from '../repo/archive-store.js';
import { summarizeArchive } from '../repo/archive-summary.js';
import { listRecords } from '../repo/backup-set/record.js';
import { DamagedHolesError, readExpiredHoles } from '../repo/expired-holes.js';
import type { Repository } from '../repo/repository.js';
import type { PlanArchive } from '../restore/plan.js';
import { gapsBetweenTimelines } from '../restore/timeline-gaps.js';
import { archiveGaps } from './archive-gaps.js';
import type { ArchiveGap } from './archive-gaps.js';

const SETTLE_MS = 60_000;

/**
 * The gaps from the oldest complete backup's start on; none without a complete backup. The records
 * are listed after the archive was (`files`): WAL an expire removed below the backups it kept is
 * then below the oldest of them, not taken for gaps.
 */
export async function requiredArchiveGaps(repo: Repository, stanza: string, segmentSize: number, files: ArchivedFile[], plan: { archive: PlanArchive; names: string[] }): Promise<ArchiveGap[]> {
  // A damaged record of what expire left out: those holes are reported as gaps, as check does, until the next expire rewrites it.
  const holes = await readExpiredHoles(repo, stanza).catch((e: unknown) => {
    if (e instanceof DamagedHolesError) return [];
    throw e;
  });
  const { gaps } = archiveGaps(summarizeArchive(files, segmentSize), gapsBetweenTimelines(plan.archive, plan.names), holes, segmentSize);
  if (gaps.length === 0) return [];
  const records = await listRecords(repo.storage, stanza);
  const starts = records.filter((r) => r.state === 'complete' && !r.damaged && r.start_lsn).map((r) => segmentNumber(parseLsn(r.start_lsn!), segmentSize));
  if (starts.length === 0) return [];
  const oldest = starts.reduce((a, b) => (b < a ? b : a));
  // A gap closed by a segment stored less than a minute ago: parallel pushes (asynchronous
  // archive-push, several repositories) store out of order for a moment, as archive-get waits out.
  const stored = new Map<string, number>();
  for (const f of files) stored.set(f.name, Math.min(f.mtimeMs, stored.get(f.name) ?? Infinity));
  const settling = (g: ArchiveGap) => Date.now() - (stored.get(g.resumes) ?? 0) < SETTLE_MS;
  return gaps.filter((g) => !settling(g)).flatMap((g) => {
    const from = parseSegmentFileName(g.from, segmentSize)!;
    const to = parseSegmentFileName(g.to, segmentSize)!;
    if (to.segNo < oldest) return [];
    // Cut to what the oldest backup needs (a gap across timelines is kept whole: where its timeline changes is not known here).
    if (from.segNo >= oldest || from.timeline !== to.timeline) return [g];
    return [{ ...g, from: segmentFileName(from.timeline, oldest, segmentSize), missing: Number(to.segNo - oldest + 1n) }];
  });
}

/** A gap as verify reports it, named by its first missing segment. */
export function gapProblem(g: ArchiveGap): { object: string; problem: string } {
  const where = g.branch === undefined ? '' : ` along timeline ${g.branch}'s history`;
  return {
    object: g.from,
    problem: `WAL missing from the archive: ${g.from}${g.missing > 1 ? ` to ${g.to}` : ''} (${g.missing} segment${g.missing > 1 ? 's' : ''}${where}), archived WAL resumes at ${g.resumes}: point-in-time recovery from a backup taken before the gap cannot replay past it`,
  };
}
