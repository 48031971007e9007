// What `info` reports about an archive, computed from its file list (pure):
// per timeline the first and last segment, the count and any gaps, plus the
// newest file stored.

import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import type { ArchivedFile } from './archive-store.js';

export interface TimelineSummary {
  timeline: number;
  min: string;
  max: string;
  segments: number;
  /** left_by_expire: inside what expire left out between standalone backups (expired-holes.ts; set by info). */
  gaps: { from: string; to: string; missing: number; left_by_expire?: boolean }[];
}

export interface ArchiveSummary {
  timelines: TimelineSummary[];
  history_files: string[];
  last_archived: { name: string; at: string } | null;
  files: number;
  bytes: number;
}

export function summarizeArchive(files: ArchivedFile[], segmentSize: number): ArchiveSummary {
  const byTimeline = new Map<number, bigint[]>();
  const history: string[] = [];
  let last: ArchivedFile | null = null;
  let bytes = 0;
  for (const f of files) {
    bytes += f.size;
    if (!last || f.mtimeMs > last.mtimeMs) last = f;
    if (f.name.endsWith('.history')) history.push(f.name);
    const seg = /^[0-9A-F]{24}$/.test(f.name) ? parseSegmentFileName(f.name, segmentSize) : null;
    if (!seg) continue;
    const list = byTimeline.get(seg.timeline) ?? [];
    list.push(seg.segNo);
    byTimeline.set(seg.timeline, list);
  }
  const timelines: TimelineSummary[] = [];
  for (const [timeline, list] of [...byTimeline].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const gaps: TimelineSummary['gaps'] = [];
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      if (cur - prev > 1n) {
        gaps.push({
          from: segmentFileName(timeline, prev + 1n, segmentSize),
          to: segmentFileName(timeline, cur - 1n, segmentSize),
          missing: Number(cur - prev - 1n),
        });
      }
    }
    timelines.push({
      timeline,
      min: segmentFileName(timeline, list[0]!, segmentSize),
      max: segmentFileName(timeline, list[list.length - 1]!, segmentSize),
      segments: list.length,
      gaps,
    });
  }
  return {
    timelines,
    history_files: history,
    last_archived: last ? { name: last.name, at: new Date(last.mtimeMs).toISOString() } : null,
    files: files.length,
    bytes,
  };
}
