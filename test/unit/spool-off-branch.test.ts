// A prefetch spool's segments that the branch recovery follows does not read are removed
// (archiving/spool-off-branch.ts): timeline 1's files past the fork of timeline 2 at 0/3800000,
// prefetched before timeline 2's history file was archived. The fork's own segment is read from
// timeline 2; the segments before it from timeline 1.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeOffBranch, spooledSegments } from '../../src/archiving/spool-off-branch.js';
import { branchSpans, parseTimelineHistory, timelineBranch } from '../../src/postgres/timeline-history.js';

test("prefetched segments of an older timeline past the branch's fork are removed; the branch's own and other files stay", () => {
  const dir = mkdtempSync(join(tmpdir(), 'spool-off-branch-'));
  try {
    const SEG = 16 * 1024 * 1024;
    const branch = timelineBranch(2, parseTimelineHistory('1\t0/3800000\tno recovery target specified\n', '00000002.history'));
    const names = ['000000010000000000000002', '000000010000000000000003', '000000010000000000000004', '000000020000000000000003', '000000020000000000000004', '000000010000000000000003.fetching', 'fetcher.log'];
    for (const n of names) writeFileSync(join(dir, n), 'x');
    const removed = removeOffBranch(dir, spooledSegments(dir), branchSpans(branch, SEG), [1, 2], SEG);
    assert.deepEqual(removed.sort(), ['000000010000000000000003', '000000010000000000000004']);
    assert.deepEqual(readdirSync(dir).sort(), ['000000010000000000000002', '000000010000000000000003.fetching', '000000020000000000000003', '000000020000000000000004', 'fetcher.log']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
