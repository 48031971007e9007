// Slots (common/slots.ts): at most N holders, and a released slot goes to the
// caller that asked first, never to one that asks later.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Slots } from '../../src/common/slots.js';

test('slots are handed out in the order they were asked for', async () => {
  const s = new Slots(2);
  const got: string[] = [];
  await s.acquire();
  await s.acquire();
  const a = s.acquire().then(() => got.push('a'));
  const b = s.acquire().then(() => got.push('b'));
  s.release();
  // A late caller finds the freed slot already handed to "a": it waits behind "b".
  const late = s.acquire().then(() => got.push('late'));
  await a;
  assert.deepEqual(got, ['a']);
  s.release();
  await b;
  s.release();
  await late;
  assert.deepEqual(got, ['a', 'b', 'late']);
});

test('a free slot is taken at once; released ones become free again', async () => {
  const s = new Slots(1);
  await s.acquire();
  s.release();
  let held = false;
  await s.acquire().then(() => (held = true));
  assert.ok(held);
});
