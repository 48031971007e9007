// What the restore plan (plan.ts) reads, made from the repository's own
// records: a backup record as a PlanBackup, and the WAL archive's listing as a
// PlanArchive (segments present per timeline, history files parsed). Used by
// restore, and by info to say which backups can be restored and to where.

import { parseLsn, parseSegmentFileName } from '../postgres/lsn.js';
import { parseTimelineHistory } from '../postgres/timeline-history.js';
import { PgpitrError } from '../common/errors.js';
import type { TimelineSwitch } from '../postgres/timeline-history.js';
import type { BackupRecord } from '../repo/backup-set/record.js';
import type { PlanArchive, PlanBackup } from './plan.js';
import type { SegmentRestorePoints } from '../postgres/segment-restore-points.js';
import { lastStoredWalFile } from '../repo/last-stored.js';
import type { LastStored } from '../repo/last-stored.js';

/** What restore needs of the WAL archive. */
export interface WalArchiveView {
  /** Names of the archived WAL files (segments, .history, ...). */
  names(): string[];
  /** Of names(), those stored in the archive itself, when names() also gives what recovery is handed from elsewhere (receive-wal's). */
  storedNames?(): string[];
  /** A history file's content, verified; null when not archived. */
  readHistory(name: string): Promise<Buffer | null>;
  /**
   * A segment's content, verified; null when not archived (read to find a recovery target). Valid
   * until the next call: segments read in turn may share buffers. `upcoming`: the segments likely
   * read next, in order (fetched meanwhile).
   */
  readSegment(name: string, upcoming?: readonly string[]): Promise<Buffer | null>;
  /** The segments read are no longer needed: what reading them holds (buffers) is let go. */
  doneReadingSegments?(): Promise<void>;
  /** When a file was stored in the repository; absent where not known. */
  storedMs?(name: string): number | undefined;
  /**
   * What the archive's restore point index says a segment holds; undefined when it cannot say (the
   * segment is read). Absent: no index (every segment is read).
   */
  restorePoints?(name: string): Promise<SegmentRestorePoints | undefined>;
}

export function planBackupOf(r: BackupRecord): PlanBackup {
  return {
    id: r.id,
    complete: r.state === 'complete',
    timeline: r.timeline ?? 0,
    startLsn: r.start_lsn ? parseLsn(r.start_lsn) : 0n,
    stopLsn: r.stop_lsn ? parseLsn(r.stop_lsn) : 0n,
    // The server's clock, as target times are (a record of older pgpitr: this host's).
    stopTimeMs: r.server_stop_time ? Date.parse(r.server_stop_time) : r.stop_time ? Date.parse(r.stop_time) : Number.POSITIVE_INFINITY,
    stopNextXid: r.stop_next_xid ? BigInt(r.stop_next_xid) : undefined,
    startXmin: r.start_xmin ? BigInt(r.start_xmin) : undefined,
    walIncluded: r.wal === 'included',
    standalone: r.pinned && r.pin_target === 'standalone',
  };
}

/** The archive as the plan reads it: segment presence by timeline, parsed history files. */
export async function planArchiveOf(view: Omit<WalArchiveView, 'readSegment'>, segmentSize: number): Promise<PlanArchive> {
  const have = new Set<string>();
  const byTimeline = new Map<number, bigint[]>();
  const histories = new Map<number, { name: string; text: string; parsed?: TimelineSwitch[] }>();
  for (const name of view.names()) {
    const seg = /^[0-9A-F]{24}$/.test(name) ? parseSegmentFileName(name, segmentSize) : null;
    if (seg) {
      have.add(`${seg.timeline}/${seg.segNo}`);
      let list = byTimeline.get(seg.timeline);
      if (!list) byTimeline.set(seg.timeline, (list = []));
      list.push(seg.segNo);
    }
    const h = /^([0-9A-F]{8})\.history$/.exec(name);
    if (h) {
      const text = await view.readHistory(name);
      if (text !== null) histories.set(parseInt(h[1]!, 16), { name, text: text.toString() });
    }
  }
  return {
    segmentSize,
    hasSegment: (t, s) => have.has(`${t}/${s}`),
    nextSegment: nextSegmentIn(byTimeline),
    // Parsed when a restore needs it: a damaged history file of a timeline it does not follow stops nothing.
    history: (t) => {
      const h = histories.get(t);
      if (h === undefined) return null;
      try {
        return (h.parsed ??= parseTimelineHistory(h.text, h.name));
      } catch (e) {
        throw new PgpitrError('ERR_STORAGE', `history file ${h.name} in the archive is damaged: ${(e as Error).message}`, {
          hint: `archive it again from the pg_wal of a server on timeline ${t} or later (each holds the history of its timeline's ancestors), or give --target-timeline to recover along another timeline`,
        });
      }
    },
    timelines: () => [1, ...histories.keys()],
    segmentTimelines: () => [...byTimeline.keys()],
    ...(view.storedMs ? { stored: storedTimes(view.names(), view.storedMs.bind(view), segmentSize) } : {}),
  };
}

/** When each timeline's history file was stored, and the segment or history file stored last. */
function storedTimes(names: string[], storedMs: (name: string) => number | undefined, segmentSize: number): NonNullable<PlanArchive['stored']> {
  // A store that gives no time (0) says nothing.
  const timed = names.map((name) => ({ name, mtimeMs: storedMs(name) ?? 0 })).filter((f) => f.mtimeMs > 0);
  const history = new Map(timed.filter((f) => /^[0-9A-F]{8}\.history$/.test(f.name)).map((f) => [parseInt(f.name.slice(0, 8), 16), f.mtimeMs]));
  const segments = timed.filter((f) => /^[0-9A-F]{24}$/.test(f.name));
  const from = (t: number, segNo: bigint) => segments.filter((f) => parseInt(f.name.slice(0, 8), 16) === t && (parseSegmentFileName(f.name, segmentSize)?.segNo ?? -1n) >= segNo);
  const lastFrom = (t: number, segNo: bigint): LastStored | null => lastStoredWalFile(from(t, segNo));
  const storedAfter = (t: number, segNo: bigint, afterMs: number): { first: LastStored; count: number } | null => {
    const after = from(t, segNo).filter((f) => f.mtimeMs > afterMs).sort((a, b) => a.mtimeMs - b.mtimeMs);
    return after.length === 0 ? null : { first: { name: after[0]!.name, timeline: t, ms: after[0]!.mtimeMs }, count: after.length };
  };
  return { historyMs: (t) => history.get(t) ?? null, last: lastStoredWalFile(timed), lastFrom, storedAfter };
}

/** nextSegment over segment numbers grouped by timeline (sorted here once, then searched by halves). */
export function nextSegmentIn(byTimeline: Map<number, bigint[]>): (timeline: number, segNo: bigint) => bigint | null {
  for (const list of byTimeline.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return (timeline, segNo) => {
    const list = byTimeline.get(timeline);
    if (!list) return null;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]! <= segNo) lo = mid + 1;
      else hi = mid;
    }
    return list[lo] ?? null;
  };
}
