// BufferPool: buffers come back for reuse, at most `keep` are held, and only
// buffers of the pool's size are taken back.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { BufferPool, poolFor } from '../../src/storage/buffer-pool.js';

test('a buffer given back is taken again; at most `keep` are held; foreign sizes and duplicates are refused', () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.take();
  const b = pool.take();
  const c = pool.take();
  assert.equal(a.length, 1024);
  assert.notEqual(a, b);
  pool.give(a);
  pool.give(a); // twice: held once
  pool.give(b);
  pool.give(c); // over `keep`: dropped
  pool.give(Buffer.alloc(512)); // another size: dropped
  const taken = [pool.take(), pool.take(), pool.take()];
  assert.ok(taken.includes(a) && taken.includes(b));
  assert.ok(!taken.includes(c));
  assert.equal(new Set(taken).size, 3);
});

test('poolFor gives one pool per size', () => {
  assert.equal(poolFor(4096), poolFor(4096));
  assert.notEqual(poolFor(4096), poolFor(8192));
});
