// Where receive-wal resumes, as pg_receivewal decides: after the newest
// complete segment already received (in the directory or, in repository mode,
// in the archive), at the start of a leftover .partial segment, or else at the
// slot's restart point or the server's current position, rounded down to a
// segment boundary. Compressed files (.gz, .lz4, and their .partial) count
// like the others. Segments an interrupted run left .partial although complete
// are completed before this is asked (interrupted-segments.ts).

import { readdirSync } from 'node:fs';
import { segmentStart } from '../postgres/lsn.js';
import { branchContains, timelineAt, timelineEnd } from '../postgres/timeline-history.js';
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
    return f === null || branchContains(branch, f.timeline, segmentStart(f.segNo, segmentSize));
  });
}

/** A resume point on a timeline of the branch that had ended at or before it: on the timeline the branch has there. */
export function resumeOnBranch(resume: ResumePoint, branch: TimelineBranch): ResumePoint {
  const end = timelineEnd(branch, resume.timeline);
  if (end === undefined || end === null || resume.start < end) return resume;
  return { start: resume.start, timeline: timelineAt(branch, resume.start) };
}

export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
