// Gaps where timelines meet: a segment missing along a timeline's branch between the WAL of
// an ancestor and its own (a primary lost with segments not yet archived, its standby
// promoted). A gap between two segments of one timeline is the archive summary's
// (repo/archive-summary.ts); this finds those no single timeline's list shows, as replay
// would meet them: along each timeline's branch, from the first segment archived on it.

import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { branchSpans, timelineBranch, timelineOfSegment } from '../postgres/timeline-history.js';
import type { PlanArchive } from './plan.js';

export interface TimelineGap {
  /** The timeline whose branch has the gap. */
  timeline: number;
  /** First and last missing segment, named on the timeline replay would read them from. */
  from: string;
  to: string;
  missing: number;
  /** The first segment archived after it along the branch, where replay could go on. */
  resumes: string;
  /** Inside what expire left out between standalone backups (repo/expired-holes.ts; set by info). */
  left_by_expire?: boolean;
}

export function gapsBetweenTimelines(archive: PlanArchive, names: readonly string[]): TimelineGap[] {
  const seg = archive.segmentSize;
  const byTimeline = new Map<number, bigint[]>();
  for (const n of names) {
    const s = /^[0-9A-F]{24}$/.test(n) ? parseSegmentFileName(n, seg) : null;
    if (!s) continue;
    let list = byTimeline.get(s.timeline);
    if (!list) byTimeline.set(s.timeline, (list = []));
    list.push(s.segNo);
  }
  for (const list of byTimeline.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const seen = new Set<string>();
  const out: TimelineGap[] = [];
  for (const timeline of [...byTimeline.keys()].sort((a, b) => a - b)) {
    if (timeline === 1) continue;
    let history;
    try {
      history = archive.history(timeline);
    } catch {
      continue; // a damaged history file is reported as such (unreadable_history_files)
    }
    if (history === null) continue; // without its history, where its WAL joins is not known
    const spans = branchSpans(timelineBranch(timeline, history), seg);
    let lastPresent: bigint | null = null;
    for (const span of spans) {
      const inSpan = (byTimeline.get(span.timeline) ?? []).filter((s) => s >= span.from && (span.to === null || s <= span.to));
      const first = inSpan[0];
      if (first === undefined) continue;
      if (lastPresent !== null && first > lastPresent + 1n) {
        const from = segmentFileName(timelineOfSegment(spans, lastPresent + 1n), lastPresent + 1n, seg);
        if (!seen.has(from)) {
          seen.add(from);
          out.push({ timeline, from, to: segmentFileName(timelineOfSegment(spans, first - 1n), first - 1n, seg), missing: Number(first - lastPresent - 1n), resumes: segmentFileName(span.timeline, first, seg) });
        }
      }
      lastPresent = inSpan[inSpan.length - 1]!;
    }
  }
  return out;
}
