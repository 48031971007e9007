// Where receive-wal resumes, as pg_receivewal decides: after the newest
// complete segment already received (in the directory or, in repository mode,
// in the archive), at the start of a leftover .partial segment, or else at the
// slot's restart point or the server's current position, rounded down to a
// segment boundary. Compressed files (.gz, .lz4, and their .partial) count
// like the others. Segments an interrupted run left .partial although complete
// are completed before this is asked (interrupted-segments.ts).

import { readdirSync } from 'node:fs';
import { segmentStart } from '../postgres/lsn.js';
import { timelineAt, timelineEnd } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import { parseReceivedFileName } from './received-file-names.js';

export interface ResumePoint {
  start: bigint;
  timeline: number;
}

/** From file names (segments and .partial); null when there are none. */
export function resumeFromNames(names: string[], segmentSize: number): ResumePoint | null {
  let best: { segNo: bigint; timeline: number; partial: boolean } | null = null;
  for (const n of names) {
    const f = parseReceivedFileName(n, segmentSize);
    if (!f) continue;
    const { segNo, timeline, partial } = f;
    if (!best || segNo > best.segNo || (segNo === best.segNo && (timeline > best.timeline || (timeline === best.timeline && !partial && best.partial)))) {
      best = { segNo, timeline, partial };
    }
  }
  if (!best) return null;
  return { start: segmentStart(best.partial ? best.segNo : best.segNo + 1n, segmentSize), timeline: best.timeline };
}

/**
 * The names of WAL on the server's branch (its timeline's history): after a point-in-time recovery
 * in place, or on a server that is not the one the WAL came from, what was received past a fork
 * is another history, and streaming cannot resume after it (the server refuses a start point that
 * is not in its history). Other files (history files) pass.
 */
export function onBranch(names: string[], branch: TimelineBranch, segmentSize: number): string[] {
  return names.filter((n) => {
    const f = parseReceivedFileName(n, segmentSize);
    if (f === null) return true;
    // A segment of a timeline that ended before it began, or just as it began (a switch on a
    // segment boundary: it holds only WAL of the history left behind), is not on the branch.
    const end = timelineEnd(branch, f.timeline);
    return end !== undefined && (end === null || segmentStart(f.segNo, segmentSize) < end);
  });
}

/**
 * A resume point on a timeline of the branch that had ended at or before it: the segment holding
 * the switch, on the timeline the branch has from there (its first part is the old timeline's WAL,
 * the rest the new one's: received whole again under the new timeline's name, as the server sends
 * it, never skipped).
 */
export function resumeOnBranch(resume: ResumePoint, branch: TimelineBranch, segmentSize: number): ResumePoint {
  const end = timelineEnd(branch, resume.timeline);
  if (end === undefined || end === null || resume.start < end) return resume;
  const size = BigInt(segmentSize);
  return { start: (end / size) * size, timeline: timelineAt(branch, end) };
}

export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
