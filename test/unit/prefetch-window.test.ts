// The background fetcher's window (archiving/prefetch-window.ts): along the branch recovery
// follows, also from a file of a timeline that gives replay no segment (its child began in the
// segment where it began), and nothing while the branch cannot be read.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { FollowedBranch } from '../../src/archiving/prefetch-window.js';
import { branchSpans } from '../../src/postgres/timeline-history.js';
import { segmentFileName } from '../../src/postgres/lsn.js';

const SEG = 1024 * 1024;
const name = (tli: number, segNo: number) => segmentFileName(tli, BigInt(segNo), SEG);

test('FollowedBranch: the window runs along the branch from any of its timelines', async () => {
  // 2 forks from 1 at 0/900000, 3 from 2 at 0/980000: both in segment 9.
  const branch = { timeline: 3, ancestors: [{ timeline: 1, switchpoint: 0x900000n, reason: '' }, { timeline: 2, switchpoint: 0x980000n, reason: '' }] };
  const view = { spans: branchSpans(branch, SEG), onBranch: [1, 2, 3] };
  const b = new FollowedBranch(async () => view, () => {});
  await b.refresh(false);
  assert.equal(b.known, true);
  assert.deepEqual(b.nextSegments(name(1, 7), 3, SEG), [name(1, 8), name(3, 9), name(3, 10)]);
  assert.deepEqual(b.nextSegments(name(2, 9), 2, SEG), [name(3, 10), name(3, 11)], 'timeline 2 has no span, but is on the branch');
  assert.deepEqual(b.nextSegments(name(5, 9), 2, SEG), [name(5, 10), name(5, 11)], 'a timeline off the branch: its own files');
});

test('FollowedBranch: a branch that cannot be read is not known', async () => {
  const lines: string[] = [];
  const b = new FollowedBranch(async () => {
    throw new Error('repository down');
  }, (l) => lines.push(l));
  await b.refresh(false);
  assert.equal(b.known, false);
  assert.match(lines[0]!, /repository down/);
});

test('FollowedBranch: looked up again every 5 s, and every second while prefetched files wait in the spool', async () => {
  let clock = 100_000;
  let loads = 0;
  const b = new FollowedBranch(async () => (loads++, null), () => {}, () => clock);
  await b.refresh(false);
  assert.equal(loads, 1);
  clock += 1500;
  await b.refresh(false);
  assert.equal(loads, 1, 'nothing held: not before 5 s');
  await b.refresh(true);
  assert.equal(loads, 2, 'files held: a failover\'s history file must empty the spool of the old timeline soon');
  clock += 500;
  await b.refresh(true);
  assert.equal(loads, 2);
  clock += 600;
  await b.refresh(true);
  assert.equal(loads, 3);
});
