import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ChunkQueue } from '../../src/storage/chunk-queue.js';

test('ChunkQueue hands chunks over in order, holds at most max, and ends', async () => {
  const q = new ChunkQueue(2);
  const got: string[] = [];
  const consumer = (async () => {
    for await (const c of q) {
      got.push(c.toString());
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  for (let i = 0; i < 10; i++) await q.push(Buffer.from(String(i)));
  q.end();
  await consumer;
  assert.deepEqual(got, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
});

test('ChunkQueue: a failure reaches the consumer, and a consumer that stops fails the producer', async () => {
  const q = new ChunkQueue(1);
  const consumer = (async () => {
    for await (const _ of q) void _;
  })();
  await q.push(Buffer.from('a'));
  q.fail(new Error('reader broke'));
  await assert.rejects(consumer, /reader broke/);

  const q2 = new ChunkQueue(1);
  const stopper = (async () => {
    for await (const _ of q2) throw new Error('disk full');
  })();
  const pushing = q2.push(Buffer.from('x')).then(() => q2.push(Buffer.from('y')));
  await assert.rejects(stopper, /disk full/);
  await assert.rejects(pushing);
});

test('ChunkQueue: a consumer that fails and passes its error on (fail) gives producers that error, not "stopped"', async () => {
  const q = new ChunkQueue(1);
  // As a storage write does: it stops iterating when its write fails; its caller then passes the error on.
  const write = (async () => {
    for await (const _ of q) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  })();
  void write.catch((e: Error) => q.fail(e));
  await q.push(Buffer.from('a'));
  await assert.rejects(async () => {
    for (let i = 0; i < 5; i++) await q.push(Buffer.from('b'));
  }, /ENOSPC/);
});

test('ChunkQueue: a chunk pushed with release is released once the consumer asks for the next, not before, and not when it stops on it', async () => {
  const q = new ChunkQueue(4);
  const released: string[] = [];
  const seen: string[] = [];
  const consumer = (async () => {
    for await (const c of q) {
      // While the consumer holds a chunk, it has not been released.
      seen.push(`${c.toString()} held, released so far: ${released.join(',')}`);
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  for (const s of ['a', 'b', 'c']) await q.push(Buffer.from(s), () => released.push(s));
  q.end();
  await consumer;
  assert.deepEqual(seen, ['a held, released so far: ', 'b held, released so far: a', 'c held, released so far: a,b']);
  assert.deepEqual(released, ['a', 'b', 'c']);

  const q2 = new ChunkQueue(4);
  const released2: string[] = [];
  const stopper = (async () => {
    for await (const _ of q2) throw new Error('disk full');
  })();
  await q2.push(Buffer.from('x'), () => released2.push('x'));
  await assert.rejects(stopper, /disk full/);
  assert.deepEqual(released2, []);
});
