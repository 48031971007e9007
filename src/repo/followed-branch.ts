// The branch a recovery follows through the archive's timelines, and which timeline's file of a
// segment number replay must read along it. PostgreSQL asks restore_command for a segment on each
// timeline of its history, newest first, and takes the first it gets: when the newest timeline's
// file is not archived yet (its first segment fills, or archive_timeout passes, only later), it
// takes the older timeline's file of that number, which holds the WAL that timeline went on with
// past its fork, and replays it: transactions the point-in-time recovery that made the newer
// timeline threw away come back, without a word. archive-get answers "not found" for such a file
// (offBranch), and the background fetcher fetches along the branch only.

import { parseSegmentFileName, timelineHistoryFileName } from '../postgres/lsn.js';
import { branchSpans, parseTimelineHistory, timelineBranch, timelineOfSegment } from '../postgres/timeline-history.js';
import type { BranchSpan, TimelineBranch } from '../postgres/timeline-history.js';
import { fetchWalFile } from './archive-store.js';
import { archivePath, storedHistoryTimeline } from './layout.js';
import type { Repository } from './repository.js';
import { readStanzaWithArchive } from './stanza.js';
import { PgpitrError } from '../common/errors.js';
import { DAMAGED_ARCHIVED_FILE_HINT } from './damaged-hint.js';

/** The newest timeline whose history file the archive holds (1 when none), as recovery_target_timeline = latest picks. */
export async function newestArchivedTimeline(repo: Repository, stanza: string): Promise<number> {
  let newest = 1;
  for (const e of await repo.storage.list(archivePath(stanza), { detail: false })) newest = Math.max(newest, storedHistoryTimeline(e.name) ?? 1);
  return newest;
}

/** The branch leading to `timeline` (its history file read and verified; timeline 1 has none); null when the archive lacks it. */
export async function archivedBranch(repo: Repository, stanza: string, timeline: number): Promise<TimelineBranch | null> {
  if (timeline === 1) return { timeline, ancestors: [] };
  const file = timelineHistoryFileName(timeline);
  const text = await fetchWalFile(repo, stanza, file);
  if (text === null) return null;
  try {
    return timelineBranch(timeline, parseTimelineHistory(text.toString(), file));
  } catch (e) {
    throw new PgpitrError('ERR_STORAGE', `archived history file ${file} of stanza "${stanza}" (${repo.location}) cannot be read: ${(e as Error).message}`, { hint: DAMAGED_ARCHIVED_FILE_HINT });
  }
}

/**
 * The branch recovery follows across the repositories, as archive-get reads them: `timeline`, else
 * the newest any of them holds (recovery_target_timeline = latest); its spans from the first that
 * holds its history file (null: none does). A repository that holds another system's stanza
 * (`systemId`, when known) is passed over; one that cannot be read too (`passed` says why), and
 * `failed` says the answer may be short of what it holds (a newer timeline, the history file).
 */
export async function followedBranch(
  repos: readonly Repository[],
  stanza: string,
  timeline: number | null,
  systemId: string | null,
  passed: (repo: Repository, e: Error) => void,
): Promise<{ follows: number; spans: BranchSpan[] | null; onBranch: number[]; segmentSize: number; failed: boolean }> {
  const usable: { repo: Repository; segmentSize: number }[] = [];
  let newest = 1;
  let failed = false;
  for (const repo of repos) {
    try {
      const st = await readStanzaWithArchive(repo, stanza);
      if (systemId !== null && st.system_identifier !== systemId) continue;
      if (timeline === null) newest = Math.max(newest, await newestArchivedTimeline(repo, stanza));
      usable.push({ repo, segmentSize: st.wal_segment_size });
    } catch (e) {
      failed = true;
      passed(repo, e as Error);
    }
  }
  const follows = timeline ?? newest;
  for (const { repo, segmentSize } of usable) {
    try {
      const branch = await archivedBranch(repo, stanza, follows);
      if (branch !== null) return { follows, spans: branchSpans(branch, segmentSize), onBranch: branchTimelines(branch), segmentSize, failed };
    } catch (e) {
      failed = true;
      passed(repo, e as Error);
    }
  }
  return { follows, spans: null, onBranch: [follows], segmentSize: usable[0]?.segmentSize ?? 0, failed };
}

/** The timelines of a branch, its own and its ancestors': PostgreSQL asks for a segment on each. */
export function branchTimelines(branch: TimelineBranch): number[] {
  return [...branch.ancestors.map((a) => a.timeline), branch.timeline];
}

/**
 * For segment file `name` of a timeline of the branch (`onBranch`: branchTimelines): the timeline
 * whose file replay reads at that segment number, when it is another (the file asked for holds WAL
 * abandoned at a fork; a timeline whose child began in the segment where it began gives replay no
 * segment at all); null when the file is the branch's own, or its timeline is not on the branch
 * (nothing to judge).
 */
export function offBranch(spans: readonly BranchSpan[], onBranch: readonly number[], name: string, segmentSize: number): number | null {
  const seg = parseSegmentFileName(name.slice(0, 24), segmentSize);
  if (seg === null || !onBranch.includes(seg.timeline)) return null;
  const reads = timelineOfSegment(spans, seg.segNo);
  return reads === seg.timeline ? null : reads;
}
