// Segments of a prefetch spool that the branch recovery follows does not read:
// an older timeline's file at a segment number past its fork (prefetched before
// the newer timeline's history file was archived). The fetcher removes them
// when it sees the new branch (prefetch-window.ts); archive-get removes them
// too whenever it runs, so that a fetcher that makes no progress (stopped,
// frozen with its cgroup, blocked on a repository) but still runs does not
// leave them for restore_command's shell move to hand over.

import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { offBranch } from '../repo/followed-branch.js';
import type { BranchSpan } from '../postgres/timeline-history.js';

/** The segment files in a spool (none when it cannot be listed). */
export function spooledSegments(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^[0-9A-F]{24}$/.test(n));
  } catch {
    return [];
  }
}

/** Removes those of `names` (spooledSegments) that the branch (spans, its timelines onBranch) does not read; returns them. */
export function removeOffBranch(dir: string, names: readonly string[], spans: readonly BranchSpan[], onBranch: readonly number[], segmentSize: number): string[] {
  const removed = names.filter((n) => offBranch(spans, onBranch, n, segmentSize) !== null);
  for (const n of removed) rmSync(join(dir, n), { force: true });
  return removed;
}
