// A made-up WAL archive as the restore plan reads it (restore/plan.ts), for
// unit tests: segments present per timeline as [timeline, first, last] runs,
// and history files' text per timeline. 16 MiB segments.

import type { PlanArchive } from '../../src/restore/plan.js';
import { nextSegmentIn } from '../../src/restore/plan-inputs.js';
import { parseTimelineHistory } from '../../src/postgres/timeline-history.js';
import type { TimelineSwitch } from '../../src/postgres/timeline-history.js';

export const SEG = 16 * 1024 * 1024;

export function planArchive(segments: [number, number, number][], histories: Record<number, string> = {}): PlanArchive {
  const have = new Set<string>();
  const byTimeline = new Map<number, bigint[]>();
  for (const [tli, from, to] of segments) {
    for (let s = from; s <= to; s++) {
      have.add(`${tli}/${s}`);
      byTimeline.set(tli, [...(byTimeline.get(tli) ?? []), BigInt(s)]);
    }
  }
  return {
    segmentSize: SEG,
    hasSegment: (t, s) => have.has(`${t}/${s}`),
    nextSegment: nextSegmentIn(byTimeline),
    history: (t): TimelineSwitch[] | null => (histories[t] === undefined ? null : parseTimelineHistory(histories[t]!)),
    timelines: () => [1, ...Object.keys(histories).map(Number)],
    segmentTimelines: () => [...byTimeline.keys()],
  };
}
