// receive-wal's resume point from the names it finds, as pg_receivewal's FindStreamingStart: the
// highest segment, the higher timeline first, a complete file over a .partial of the same
// segment and timeline only; the order the names come in never matters.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { resumeFromNames } from '../../src/wal/start-position.js';

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
