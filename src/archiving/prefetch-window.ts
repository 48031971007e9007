// The segments the background fetcher fetches ahead of recovery: the next ones along the branch
// recovery follows (repo/followed-branch.ts), looked up again every BRANCH_REFRESH_MS (a standby
// following the latest timeline meets new ones), and every HELD_REFRESH_MS while the spool holds
// prefetched files. Never an older timeline's file past its fork: restore_command's shell hands
// over whatever the spool holds, without asking pgpitr, so a failover's history file must empty
// the spool of the old timeline's files soon after it is archived (archive-get alone would answer
// "not found" for them at once).

import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { timelineOfSegment } from '../postgres/timeline-history.js';
import type { BranchSpan } from '../postgres/timeline-history.js';

const BRANCH_REFRESH_MS = 5000;
/** While files wait in the spool for the shell to hand over: one look at the archive a second. */
const HELD_REFRESH_MS = 1000;

/** What the fetcher knows of the branch: its spans (branchSpans), and its timelines (branchTimelines). */
export interface BranchView {
  spans: BranchSpan[];
  onBranch: number[];
}

export class FollowedBranch {
  /** null: no history file for the branch (the requested segment's timeline is followed). */
  private view: BranchView | null = null;
  private failed = false;
  private at = 0;

  /** `load` absent: the requested segment's timeline is followed. */
  constructor(
    private readonly load: (() => Promise<BranchView | null>) | undefined,
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the window may be fetched: not while the branch could not be read (it could lead anywhere). */
  get known(): boolean {
    return !this.failed;
  }

  /** `holding`: prefetched files wait in the spool, which a new branch may make wrong to hand over. */
  async refresh(holding: boolean): Promise<void> {
    if (this.load === undefined || this.now() - this.at < (holding ? HELD_REFRESH_MS : BRANCH_REFRESH_MS)) return;
    this.at = this.now();
    try {
      this.view = await this.load();
      this.failed = false;
    } catch (e) {
      if (!this.failed) this.log(`the branch recovery follows could not be read (${(e as Error).message}): nothing is fetched ahead until it can`);
      this.failed = true;
    }
  }

  /** The `count` segments after `after`: along the branch when its timeline is on it, else on its timeline. */
  nextSegments(after: string, count: number, segmentSize: number): string[] {
    const seg = parseSegmentFileName(after, segmentSize);
    if (!seg) return [];
    const along = this.view !== null && this.view.onBranch.includes(seg.timeline) ? this.view.spans : null;
    const out: string[] = [];
    for (let i = 1n; i <= BigInt(count); i++) out.push(segmentFileName(along ? timelineOfSegment(along, seg.segNo + i) : seg.timeline, seg.segNo + i, segmentSize));
    return out;
  }
}
