// The readers' own count in a -j backup's progress (backup/parallel/pool-progress.ts): from the
// moment it is reported on, only the bytes read after count (those before went through a tar and
// were counted there), and chunks through a tar are then told to count for nothing more.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { PoolProgress } from '../../src/backup/parallel/pool-progress.js';

test("the pool's count is reported from where it was when counting started, once", () => {
  let done = 100;
  const reported: number[] = [];
  const p = new PoolProgress(() => done, (n) => reported.push(n));
  p.report();
  assert.deepEqual(reported, [], 'not counting yet: the tar path counts');
  assert.equal(p.counting, false);
  p.start();
  assert.equal(p.counting, true);
  done = 250;
  p.report();
  p.start(); // a second start (another tablespace written directly) does not start over
  done = 300;
  p.report();
  p.report();
  p.stop();
  assert.deepEqual(reported, [150, 50]);
});
