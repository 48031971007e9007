// Where a named restore point is, found in the archived WAL before anything is
// written: PostgreSQL stops at the first restore point of that name it replays
// after the backup's start, and fails at the end of the archive ("recovery ended
// before configured recovery target was reached") when there is none, or when
// the first is before the backup is consistent. Knowing its position, restore
// picks the newest backup that can reach it, and refuses a name the archive does
// not hold (a typo, a point not archived yet) in seconds instead of after the
// copy and the whole replay.
//
// The plan (plan.ts) stays pure: it asks this search for what it has found, and
// when the search has not looked yet, planning stops with RestorePointUnknown;
// planWithRestorePoint scans what was asked for and plans again. Candidates are
// planned newest first, so the scans go back one backup at a time, each reading
// only the segments between this backup's start and where the last scan began.

import { crc32c } from '../storage/filter/crc32c.js';
import { WalRecordScanner } from '../postgres/wal-records.js';
import type { RestorePointRecord } from '../postgres/wal-records.js';
import { formatLsn, segmentFileName } from '../postgres/lsn.js';
import type { Lsn } from '../postgres/lsn.js';
import { branchSpans, timelineAt, timelineOfSegment } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import type { PlanArchive, PlanBackup, RestorePlan, RestorePointLookup } from './plan.js';
import { RestorePointUnknown, planRestore } from './plan.js';
import type { TargetOptions } from './restore-target.js';

export interface FoundRestorePoint extends RestorePointRecord {
  timeline: number;
}

/** A segment's bytes (decompressed, verified), or null when the archive does not hold it. */
export type ReadSegment = (name: string) => Promise<Buffer | null>;

interface Scanned {
  /** The scan looked at restore points from here on... */
  from: Lsn;
  /** ...beginning with this segment (read whole)... */
  fromSeg: bigint;
  /** ...and the first of the name it found, or null: none up to the end of the unbroken run. */
  first: FoundRestorePoint | null;
}

const branchKey = (b: TimelineBranch): string => [b.timeline, ...b.ancestors.map((a) => `${a.timeline}@${a.switchpoint}`)].join(',');

export class RestorePointSearch implements RestorePointLookup {
  private readonly scanned = new Map<string, Scanned[]>();
  /** Segments read, all scans together (for the user). */
  segmentsRead = 0;

  constructor(
    readonly name: string,
    private readonly archive: PlanArchive,
    private readonly read: ReadSegment,
    private readonly log: (line: string) => void,
    readonly awaitsMissing = false,
  ) {}

  firstFrom(branch: TimelineBranch, from: Lsn): FoundRestorePoint | null | undefined {
    // A scan from at or before `from` knows, unless the first point it found is before `from`.
    for (const s of this.scanned.get(branchKey(branch)) ?? []) {
      if (s.from <= from && (s.first === null || s.first.lsn >= from)) return s.first;
    }
    return undefined;
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
    const fetch = (segNo: bigint): Promise<Buffer | null> | null => {
      const tl = timelineOfSegment(spans, segNo);
      if (!this.archive.hasSegment(tl, segNo)) return null;
      const p = this.read(segmentFileName(tl, segNo, this.archive.segmentSize));
      p.catch(() => undefined); // awaited below; not a rejection left unhandled when the scan stops first
      return p;
    };
    // Whether the scan reached what the last one knows (its first segment, read whole).
    let joined = false;
    let next = fetch(startSeg);
    for (let segNo = startSeg; next !== null && first === null; segNo++) {
      // The next segment is fetched (decompressed, decrypted) while this one is read.
      const ahead = reuse && segNo >= reuse.fromSeg ? null : fetch(segNo + 1n);
      const data = await next;
      next = ahead;
      if (data === null) break;
      this.segmentsRead++;
      const went = scanner.segment(segNo * size, data);
      if (reuse && segNo === reuse.fromSeg) joined = true;
      if (went === 'end') break;
      if (this.segmentsRead % 256 === 0) this.log(`looking for restore point "${this.name}": ${this.segmentsRead} segments read`);
    }
    const found = first as FoundRestorePoint | null;
    // Past the last scan's first segment, its finding stands: the earlier of the two is the first.
    const known = joined && reuse ? reuse.first : null;
    const result = found !== null && (known === null || found.lsn <= known.lsn) ? found : known;
    this.scanned.set(key, [...scans, { from, fromSeg: startSeg, first: result }]);
  }
}

/** The plan, with a named target's position found in the archive first (for any other target: planRestore). */
export async function planWithRestorePoint(backups: PlanBackup[], archive: PlanArchive, t: TargetOptions, set: string | undefined, read: ReadSegment, log: (line: string) => void, standby = false): Promise<RestorePlan> {
  if (t.target.kind !== 'name') return planRestore(backups, archive, t, set);
  const search = new RestorePointSearch(t.target.name, archive, read, log, standby);
  const asked = new Set<string>();
  for (;;) {
    try {
      return planRestore(backups, archive, t, set, search);
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
