// The SHA-256 thread restore's segment reader hashes with: the same digests as
// node:crypto, on shared memory only, several in flight, and a thread left idle
// does not keep the process alive (the test process would not end otherwise).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash, randomFillSync } from 'node:crypto';
import { Sha256Thread, sharedBuffer } from '../../src/storage/sha256-thread.js';

test('Sha256Thread: digests of shared buffers, several at once, as node:crypto gives them', async () => {
  const t = new Sha256Thread();
  const bufs = [1, 4096, 3 << 20].map((n) => randomFillSync(sharedBuffer(n)));
  // A view inside a shared buffer hashes only its own bytes.
  bufs.push(bufs[2]!.subarray(100, 200_000));
  const got = await Promise.all(bufs.map((b) => t.digest(b)));
  assert.deepEqual(got, bufs.map((b) => createHash('sha256').update(b).digest('hex')));
  assert.equal(Sha256Thread.canHash(Buffer.alloc(10)), false);
  assert.equal(Sha256Thread.canHash(bufs[0]!), true);
  // Idle again: this test's process ends without stop(); a second thread is stopped.
  const u = new Sha256Thread();
  await u.stop();
  await assert.rejects(u.digest(bufs[0]!), /SHA-256 thread exited/);
});
