// Timeline history files (TTTTTTTT.history): each line "parentTLI<TAB>switchpoint
// <TAB>reason" says that timeline parentTLI ended at switchpoint, where its
// child began. A timeline's history lists every ancestor, oldest first, so the
// history of the newest timeline alone tells which timeline any WAL position
// of that branch was written on. Parsed as PostgreSQL reads it: switchpoints
// never decreasing (clampSwitchpoints).

import { parseLsn } from './lsn.js';
import type { Lsn } from './lsn.js';

export interface TimelineSwitch {
  /** The ancestor timeline that ended... */
  timeline: number;
  /** ...at this LSN (the first byte of its child). */
  switchpoint: Lsn;
  reason: string;
}

/** The branch leading to `timeline`: its ancestors with their switchpoints, then itself (endless). */
export interface TimelineBranch {
  timeline: number;
  ancestors: TimelineSwitch[];
}

/** Parses a history file; throws on a malformed line (blank lines and # comments are allowed, as in PostgreSQL). */
export function parseTimelineHistory(text: string, file = 'history file'): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(?:\s+(.*))?$/.exec(line);
    if (!m) throw new Error(`${file}: syntax error in line "${line}"`);
    const timeline = Number(m[1]);
    const previous = out[out.length - 1];
    if (previous && timeline <= previous.timeline) {
      throw new Error(`${file}: timeline IDs must be in increasing sequence (${timeline} after ${previous.timeline})`);
    }
    out.push({ timeline, switchpoint: parseLsn(m[2]!), reason: (m[3] ?? '').trim() });
  }
  return clampSwitchpoints(out);
}

/**
 * A recovery that stopped on an older timeline than the one it followed (a point-in-time restore to
 * a point before a failover, with the default latest timeline) writes a history whose last line
 * names the followed timeline and a switchpoint before that timeline began ("2 0/100000A0", then
 * "3 0/9001C28"): the new timeline began at 0/9001C28, and timeline 2 ended there, not at 0/100000A0.
 * PostgreSQL reads a history newest first (tliOfPointInHistory: a position belongs to the newest
 * timeline whose range holds it), so each ancestor ends at its own switchpoint or at a later line's,
 * whichever is first: the switchpoints as it understands them, never decreasing.
 */
function clampSwitchpoints(history: TimelineSwitch[]): TimelineSwitch[] {
  let end: Lsn | null = null;
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i]!;
    if (end !== null && end < h.switchpoint) history[i] = { ...h, switchpoint: end };
    end = history[i]!.switchpoint;
  }
  return history;
}

export function timelineBranch(timeline: number, history: TimelineSwitch[]): TimelineBranch {
  for (const h of history) {
    if (h.timeline >= timeline) throw new Error(`history of timeline ${timeline} names a later timeline ${h.timeline}`);
  }
  return { timeline, ancestors: history };
}

/** The timeline a position of this branch was written on. */
export function timelineAt(branch: TimelineBranch, lsn: Lsn): number {
  for (const a of branch.ancestors) if (lsn < a.switchpoint) return a.timeline;
  return branch.timeline;
}

/**
 * Where `timeline` ends on this branch: its switchpoint if it is an ancestor,
 * null (no end) for the branch's own timeline, undefined if it is not on the
 * branch at all.
 */
export function timelineEnd(branch: TimelineBranch, timeline: number): Lsn | null | undefined {
  if (timeline === branch.timeline) return null;
  return branch.ancestors.find((a) => a.timeline === timeline)?.switchpoint;
}

/**
 * Whether WAL written on `timeline` up to `lsn` belongs to this branch: the
 * timeline is on the branch and had not yet ended there. A backup taken on
 * timeline 1 that stopped at lsn can be recovered along the branch of
 * timeline 3 only if timeline 1 ended (in 3's history) after lsn.
 */
export function branchContains(branch: TimelineBranch, timeline: number, lsn: Lsn): boolean {
  const end = timelineEnd(branch, timeline);
  if (end === undefined) return false;
  return end === null || lsn <= end;
}

/** The segments one timeline of a branch gives replay: from `from` to `to` (null: no end), both included. */
export interface BranchSpan {
  timeline: number;
  from: bigint;
  to: bigint | null;
}

/**
 * Which timeline's file replay reads for each segment along the branch, as PostgreSQL picks them:
 * the newest timeline of the branch that had begun by that segment (a timeline begins in the
 * segment of its parent's switchpoint, into which promotion copied the parent's part). In order,
 * without overlap; the last span is the branch's own timeline, endless.
 */
export function branchSpans(branch: TimelineBranch, segmentSize: number): BranchSpan[] {
  const size = BigInt(segmentSize);
  const out: BranchSpan[] = [];
  let begin = 0n;
  for (const a of [...branch.ancestors, { timeline: branch.timeline, switchpoint: null }]) {
    const from = begin / size;
    const previous = out[out.length - 1];
    // A timeline that began in the segment where its parent did: the parent gives replay nothing.
    if (previous && previous.from === from) out.pop();
    else if (previous) previous.to = from - 1n;
    out.push({ timeline: a.timeline, from, to: null });
    if (a.switchpoint !== null) begin = a.switchpoint;
  }
  return out;
}

/** The timeline whose file replay reads for segment `segNo`, from the branch's spans (branchSpans). */
export function timelineOfSegment(spans: readonly BranchSpan[], segNo: bigint): number {
  return (spans.find((s) => segNo >= s.from && (s.to === null || segNo <= s.to)) ?? spans[0]!).timeline;
}

/**
 * The segment files replay reads from `from` to `to` along the branch (branchSpans says which
 * timeline's); with `lastIf`, up to the first segment it is true of (a target far past the
 * archive's end lists the first segment missing, not the 2^40 segments up to FFFFFFFF/FFFFFFFF).
 */
export function segmentsAlong(branch: TimelineBranch, from: Lsn, to: Lsn, segmentSize: number, lastIf?: (timeline: number, segNo: bigint) => boolean): { timeline: number; segNo: bigint }[] {
  const size = BigInt(segmentSize);
  const spans = branchSpans(branch, segmentSize);
  const out: { timeline: number; segNo: bigint }[] = [];
  for (let seg = from / size; seg <= to / size; seg++) {
    const timeline = timelineOfSegment(spans, seg);
    out.push({ timeline, segNo: seg });
    if (lastIf?.(timeline, seg)) break;
  }
  return out;
}
