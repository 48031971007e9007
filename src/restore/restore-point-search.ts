// Where a named restore point is, found in the archived WAL before anything is
// written: PostgreSQL stops at the first restore point of that name it replays
// after the backup's start, and fails at the end of the archive ("recovery ended
// before configured recovery target was reached") when there is none, or when
// the first is before the backup is consistent. Knowing its position, restore
// picks the newest backup that can reach it, and refuses a name the archive does
// not hold (a typo, a point not archived yet) in seconds instead of after the
// copy and the whole replay.
//
// The archive's restore point index (repo/restore-point-index.ts: what archiving
// recorded of each segment) answers for most segments without reading them; a
// segment without a record, with one that cannot be read, or whose last record
// may be a restore point running on into the next is read (and then the next).
//
// The plan (plan.ts) stays pure: it asks this search for what it has found, and
// when the search has not looked yet, planning stops with RestorePointUnknown;
// planWithRestorePoint scans what was asked for and plans again. Candidates are
// planned newest first, so the scans go back one backup at a time, each reading
// only the segments between this backup's start and where the last scan began.

import { crc32c } from '../storage/filter/crc32c.js';
import { WalRecordScanner } from '../postgres/wal-records.js';
import type { RestorePointRecord } from '../postgres/wal-records.js';
import type { SegmentRestorePoints } from '../postgres/segment-restore-points.js';
import { formatLsn, segmentFileName } from '../postgres/lsn.js';
import type { Lsn } from '../postgres/lsn.js';
import { branchSpans, timelineAt, timelineOfSegment } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import type { PlanArchive, PlanBackup, RestorePlan, RestorePointLookup } from './plan.js';
import { RestorePointUnknown, planRestore } from './plan.js';
import { historiesOf, timelineEndedHint } from './plan-refusals.js';
import type { TargetOptions } from './restore-target.js';
import { warnOfEarlierRestorePoint } from './restore-point-earlier.js';

export interface FoundRestorePoint extends RestorePointRecord {
  timeline: number;
}

/**
 * A segment's bytes (decompressed, verified), or null when the archive does not hold it; valid
 * until the next call. `upcoming`: the segments likely read next, in order (fetched meanwhile).
 */
export type ReadSegment = (name: string, upcoming?: readonly string[]) => Promise<Buffer | null>;

/**
 * What the archive's restore point index says a segment holds; undefined when it cannot say (the
 * segment is read). plan-inputs.ts WalArchiveView.restorePoints.
 */
export type SegmentIndex = (name: string) => Promise<SegmentRestorePoints | undefined>;

/** Segments named ahead of the one read. */
const UPCOMING = 2;

interface Scanned {
  /** The scan looked at restore points from here on... */
  from: Lsn;
  /** ...beginning with this segment (read whole)... */
  fromSeg: bigint;
  /** ...and the first of the name it found, or null: none up to where the WAL it could read ended... */
  first: FoundRestorePoint | null;
  /** ...which is (when none was found) before this position (the end of the segment where it stopped), for this reason (for the user). */
  stopped: { lsn: Lsn; why: string } | null;
}

const branchKey = (b: TimelineBranch): string => [b.timeline, ...b.ancestors.map((a) => `${a.timeline}@${a.switchpoint}`)].join(',');

export class RestorePointSearch implements RestorePointLookup {
  private readonly scanned = new Map<string, Scanned[]>();
  /** Segments read, all scans together (for the user). */
  segmentsRead = 0;

  /** Segments the restore point index answered for, all scans together. */
  segmentsKnown = 0;

  constructor(
    readonly name: string,
    private readonly archive: PlanArchive,
    private readonly read: ReadSegment,
    private readonly log: (line: string) => void,
    readonly awaitsMissing = false,
    private readonly index?: SegmentIndex,
  ) {}

  firstFrom(branch: TimelineBranch, from: Lsn): FoundRestorePoint | null | undefined {
    return this.known(branch, from)?.first;
  }

  whereEnded(branch: TimelineBranch, from: Lsn): string | undefined {
    return this.known(branch, from)?.stopped?.why;
  }

  /** A scan that answers for `from`: it began at or before it, and found its first point after it, or none up to the segment where it stopped. */
  private known(branch: TimelineBranch, from: Lsn): Scanned | undefined {
    return (this.scanned.get(branchKey(branch)) ?? []).find((s) => s.from <= from && (s.first !== null ? s.first.lsn >= from : s.stopped !== null && from < s.stopped.lsn));
  }

  /** Reads the archive along `branch` from `from` to the first restore point of the name at or after it. */
  async scan(branch: TimelineBranch, from: Lsn): Promise<void> {
    const size = BigInt(this.archive.segmentSize);
    const key = branchKey(branch);
    const scans = this.scanned.get(key) ?? [];
    const spans = branchSpans(branch, this.archive.segmentSize);
    let first: FoundRestorePoint | null = null;
    const scanner = new WalRecordScanner({
      crc32c,
      onRestorePoint: (p) => {
        if (first === null && p.name === this.name && p.lsn >= from) first = { ...p, timeline: timelineAt(branch, p.lsn) };
      },
    });
    const startSeg = from / size;
    // Up to where the nearest later scan began (and through its first segment, for a record
    // crossing into it); past that, what it found stands.
    const reuse = scans.filter((x) => x.from > from).sort((x, y) => (x.from < y.from ? -1 : 1))[0];
    this.log(`looking for restore point "${this.name}" in the archive from ${formatLsn(from)} along timeline ${branch.timeline}${reuse ? ` to ${segmentFileName(timelineOfSegment(spans, reuse.fromSeg), reuse.fromSeg, this.archive.segmentSize)}` : ''}`);
    const nameOf = (segNo: bigint): string | undefined => {
      const tl = timelineOfSegment(spans, segNo);
      return this.archive.hasSegment(tl, segNo) ? segmentFileName(tl, segNo, this.archive.segmentSize) : undefined;
    };
    // Whether the scan reached what the nearest later scan knows (its first segment, read whole).
    let joined = false;
    let stopped: Scanned['stopped'] = null;
    // With the index, the segment after one read is read too when the record running on into it
    // may be a restore point (the index says so of the first; the reading, of the next).
    let mustRead = false;
    const readBefore = this.segmentsRead;
    const knownBefore = this.segmentsKnown;
    /** What the index says of a segment that need not be read (undefined: read it). */
    const indexed = async (name: string): Promise<SegmentRestorePoints | undefined> => {
      const known = this.index === undefined ? undefined : await this.index(name);
      return known?.crosses === true ? undefined : known;
    };
    for (let segNo = startSeg; first === null; segNo++) {
      const name = nameOf(segNo);
      if (name === undefined) {
        stopped = { lsn: (segNo + 1n) * size, why: this.missing(branch, spans, segNo) };
        break;
      }
      const known = mustRead ? undefined : await indexed(name);
      if (known !== undefined) {
        this.segmentsKnown++;
        for (const p of known.points) {
          if (first === null && p.name === this.name && p.lsn >= from) first = { ...p, timeline: timelineAt(branch, p.lsn) };
        }
        if (reuse && segNo === reuse.fromSeg) joined = true;
        if (known.ends) stopped = { lsn: (segNo + 1n) * size, why: `read to segment ${name}, where the WAL ends before the segment does (as recovery reads it; from the restore point index)` };
        if (known.ends || joined) break;
        continue;
      }
      // Fetched meanwhile: the next segments that will be read too (no record for them).
      const upcoming: string[] = [];
      for (let n = segNo + 1n; n <= segNo + BigInt(UPCOMING) && !(reuse && n > reuse.fromSeg); n++) {
        const u = nameOf(n);
        if (u === undefined || (await indexed(u)) !== undefined) break;
        upcoming.push(u);
      }
      const data = await this.read(name, upcoming);
      if (data === null) {
        stopped = { lsn: (segNo + 1n) * size, why: `segment ${name} left the archive while it was read` };
        break;
      }
      this.segmentsRead++;
      const went = scanner.segment(segNo * size, data);
      mustRead = this.index !== undefined && went === 'next' && scanner.pendingMayBeRestorePoint();
      if (reuse && segNo === reuse.fromSeg) joined = true;
      // (Where in the segment is not kept: a backup starts at a record, so none starts past it there.)
      if (went === 'end') stopped = { lsn: (segNo + 1n) * size, why: `read to segment ${name}, where the WAL ends before the segment does (as recovery reads it)` };
      if (went === 'end' || joined) break;
      if (this.segmentsRead % 256 === 0) this.log(`looking for restore point "${this.name}": ${this.segmentsRead} segments read`);
    }
    const fromIndex = this.segmentsKnown - knownBefore;
    if (fromIndex > 0) this.log(`looking for restore point "${this.name}": ${fromIndex} segment(s) known from the restore point index, ${this.segmentsRead - readBefore} read`);
    const found = first as FoundRestorePoint | null;
    // Past the last scan's first segment, its finding stands: the earlier of the two is the first.
    const known = joined && reuse ? reuse : null;
    if (found !== null && (known?.first == null || found.lsn <= known.first.lsn)) {
      this.scanned.set(key, [...scans, { from, fromSeg: startSeg, first: found, stopped: null }]);
    } else if (known !== null) {
      this.scanned.set(key, [...scans, { from, fromSeg: startSeg, first: known.first, stopped: known.stopped }]);
    } else {
      // (Every way out of the loop without a point or the later scan sets `stopped`.)
      this.scanned.set(key, [...scans, { from, fromSeg: startSeg, first: null, stopped }]);
    }
  }

  /** Why a scan stopped at a segment the archive does not hold: its end, or a gap. */
  private missing(branch: TimelineBranch, spans: ReturnType<typeof branchSpans>, segNo: bigint): string {
    const tl = timelineOfSegment(spans, segNo);
    const name = segmentFileName(tl, segNo, this.archive.segmentSize);
    if (this.archive.nextSegment(tl, segNo) !== null) return `read up to a gap in the archive: segment ${name} is missing, and later ones are archived`;
    // The timeline followed ended (a newer one forked from it): nothing more of it comes.
    const ended = tl === branch.timeline ? timelineEndedHint(branch, historiesOf(this.archive), segNo, this.archive.segmentSize) : null;
    return ended !== null ? `read to the end of timeline ${tl}: ${ended}` : `read to the end of the archive: segment ${name} is not archived (yet)`;
  }
}

/** The plan, with a named target's position found in the archive first (for any other target: planRestore). */
export async function planWithRestorePoint(backups: PlanBackup[], archive: PlanArchive, t: TargetOptions, set: string | undefined, read: ReadSegment, log: (line: string) => void, standby = false, index?: SegmentIndex): Promise<RestorePlan> {
  if (t.target.kind !== 'name') return planRestore(backups, archive, t, set);
  const search = new RestorePointSearch(t.target.name, archive, read, log, standby, index);
  const asked = new Set<string>();
  for (;;) {
    try {
      const plan = planRestore(backups, archive, t, set, search);
      if (set === undefined) await warnOfEarlierRestorePoint(plan, backups, archive, t.target.name, index, log);
      return plan;
    } catch (e) {
      if (!(e instanceof RestorePointUnknown)) throw e;
      // Each scan answers what was asked: the same question twice would loop.
      const question = `${branchKey(e.branch)}/${e.from}`;
      if (asked.has(question)) throw new Error(`internal error: the search for restore point "${t.target.name}" from ${formatLsn(e.from)} did not answer`);
      asked.add(question);
      await search.scan(e.branch, e.from);
    }
  }
}
