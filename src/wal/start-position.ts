// Where receive-wal resumes, as pg_receivewal decides: after the newest
// complete segment already received (in the directory or, in repository mode,
// in the archive), at the start of a leftover .partial segment, or else at the
// slot's restart point or the server's current position, rounded down to a
// segment boundary.

import { readdirSync } from 'node:fs';
import { parseSegmentFileName, segmentStart } from '../postgres/lsn.js';

export interface ResumePoint {
  start: bigint;
  timeline: number;
}

/** From file names (segments and .partial); null when there are none. */
export function resumeFromNames(names: string[], segmentSize: number): ResumePoint | null {
  let best: { segNo: bigint; timeline: number; partial: boolean } | null = null;
  for (const n of names) {
    const m = /^([0-9A-F]{24})(\.partial)?$/.exec(n);
    if (!m) continue;
    const seg = parseSegmentFileName(m[1]!, segmentSize);
    if (!seg) continue;
    const partial = m[2] !== undefined;
    if (!best || seg.segNo > best.segNo || (seg.segNo === best.segNo && (seg.timeline > best.timeline || (!partial && best.partial)))) {
      best = { segNo: seg.segNo, timeline: seg.timeline, partial };
    }
  }
  if (!best) return null;
  return { start: segmentStart(best.partial ? best.segNo : best.segNo + 1n, segmentSize), timeline: best.timeline };
}

export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
