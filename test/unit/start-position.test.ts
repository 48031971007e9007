// receive-wal's resume point from the names it finds, as pg_receivewal's FindStreamingStart: the
// highest segment, the higher timeline first, a complete file over a .partial of the same
// segment and timeline only; the order the names come in never matters.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { onBranch, resumeFromNames, resumeOnBranch } from '../../src/wal/start-position.js';
import { parseTimelineHistory, timelineBranch } from '../../src/postgres/timeline-history.js';
import { parseLsn } from '../../src/postgres/lsn.js';

const SEG = 16 * 1024 * 1024;

test('a .partial on a higher timeline wins over a complete segment of the same number on a lower one, in any order', () => {
  const names = ['000000020000000000000005.partial', '000000010000000000000005'];
  for (const order of [names, [...names].reverse()]) {
    assert.deepEqual(resumeFromNames(order, SEG), { start: 5n * BigInt(SEG), timeline: 2 });
  }
});

test('on one timeline a complete segment wins over its .partial; the next segment is where streaming resumes', () => {
  for (const order of [['000000010000000000000005.partial', '000000010000000000000005'], ['000000010000000000000005', '000000010000000000000005.partial']]) {
    assert.deepEqual(resumeFromNames(order, SEG), { start: 6n * BigInt(SEG), timeline: 1 });
  }
  assert.equal(resumeFromNames(['00000002.history', 'x'], SEG), null);
});

test('only WAL on the server\'s history is resumed after; a resume point past the end of its timeline moves to the one after', () => {
  // The server is on timeline 3, forked from timeline 2 at 0/32800000 (segment 0x32): a point-in-time
  // recovery in place, while timeline 2 had been received up to segment 0x50.
  const branch = timelineBranch(3, parseTimelineHistory('1\t0/10000000\tno recovery target specified\n2\t0/32800000\tbefore 2026-12-05 11:00:00+00\n'));
  const names = ['000000020000000000000031', '000000020000000000000032', '000000020000000000000050', '00000003.history'];
  const kept = onBranch(names, branch, SEG);
  assert.deepEqual(kept, ['000000020000000000000031', '000000020000000000000032', '00000003.history']);
  const r = resumeFromNames(kept, SEG)!;
  assert.deepEqual(r, { start: parseLsn('0/33000000'), timeline: 2 });
  // Timeline 2 ended at 0/32800000, inside segment 0x32: streaming resumes at the start of that
  // segment on timeline 3 (its WAL after the switch is timeline 3's), never at 0x33.
  assert.deepEqual(resumeOnBranch(r, branch, SEG), { start: parseLsn('0/32000000'), timeline: 3 });
  // Before the end of its timeline, a resume point stays where it is (the server streams to the switch, then says so).
  assert.deepEqual(resumeOnBranch({ start: parseLsn('0/32000000'), timeline: 2 }, branch, SEG), { start: parseLsn('0/32000000'), timeline: 2 });
  assert.deepEqual(resumeOnBranch({ start: parseLsn('0/40000000'), timeline: 3 }, branch, SEG), { start: parseLsn('0/40000000'), timeline: 3 });
  // A switch on a segment boundary: the old timeline's segment starting there holds only WAL of the
  // history left behind, and is not on the branch; streaming resumes there on the new timeline.
  const onBoundary = timelineBranch(2, parseTimelineHistory('1\t0/33000000\tno recovery target specified\n'));
  const left = onBranch(['000000010000000000000032', '000000010000000000000033'], onBoundary, SEG);
  assert.deepEqual(left, ['000000010000000000000032']);
  assert.deepEqual(resumeOnBranch(resumeFromNames(left, SEG)!, onBoundary, SEG), { start: parseLsn('0/33000000'), timeline: 2 });
  // A server on timeline 1: WAL of another timeline (a copy promoted elsewhere) is not resumed after.
  assert.deepEqual(onBranch(['000000010000000000000005', '000000020000000000000009'], timelineBranch(1, []), SEG), ['000000010000000000000005']);
});
