// StoreQueue (receive-wal's repository mode): stores in the background,
// bounds what waits, and reports the first failure.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { StoreQueue } from '../../src/wal/store-queue.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test('stores every added file, at most `concurrency` at once', async () => {
  let running = 0;
  let peak = 0;
  const stored: string[] = [];
  const q = new StoreQueue(async (p) => {
    running++;
    peak = Math.max(peak, running);
    await tick();
    stored.push(p);
    running--;
  }, 2, 100);
  for (let i = 0; i < 10; i++) await q.add(`seg${i}`);
  await q.drain();
  assert.equal(stored.length, 10);
  assert.deepEqual([...stored].sort(), Array.from({ length: 10 }, (_, i) => `seg${i}`).sort());
  assert.equal(peak, 2);
});

test('add() waits while more than maxPending files wait', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const q = new StoreQueue(() => gate, 1, 2);
  await q.add('a'); // running
  await q.add('b'); // waiting: 1
  await q.add('c'); // waiting: 2
  let added = false;
  const d = q.add('d').then(() => (added = true)); // waiting: 3 > 2
  await tick(20);
  assert.equal(added, false);
  release();
  await d;
  await q.drain();
});

test('a failure is raised by the next add() and by drain()', async () => {
  const q = new StoreQueue(async (p) => {
    await tick();
    if (p === 'bad') throw new Error('disk full');
  }, 1, 10);
  await q.add('bad');
  await assert.rejects(q.drain(), /disk full/);
  await assert.rejects(q.add('next'), /disk full/);
});

test('with retry: a failed store is tried again after a delay, files in the order they were added; the stream is not told', async () => {
  let down = 2; // the repository fails the first two tries
  const stored: string[] = [];
  const said: string[] = [];
  const q = new StoreQueue(async (p) => {
    await tick(1);
    if (down > 0) {
      down--;
      throw new Error('repository unreachable');
    }
    stored.push(p);
  }, 1, 10, { delayMs: (n) => n * 10, failed: (p, e, d) => said.push(`${p}: ${e.message} (${d} ms)`) });
  await q.add('a');
  await q.add('b'); // added while a fails: no error for the caller
  await q.add('a'); // queued already: not twice
  await q.drain();
  assert.deepEqual(stored, ['a', 'b']);
  assert.deepEqual(said, ['a: repository unreachable (10 ms)', 'a: repository unreachable (20 ms)']);
});

test('drain(signal) gives up when the signal is aborted (the files stay for the next start)', { timeout: 60_000 }, async () => {
  const q = new StoreQueue(async () => {
    throw new Error('down');
  }, 1, 10, { delayMs: () => 60_000, failed: () => {} });
  await q.add('a');
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 20);
  await q.drain(stop.signal);
  q.stop();
});

test('with retry: a failure said to be final is raised, as without retry', async () => {
  const q = new StoreQueue(async () => {
    throw new Error('already archived with different content');
  }, 1, 10, { delayMs: () => 10, failed: () => assert.fail('not tried again'), final: (e) => /already archived/.test(e.message) });
  await q.add('a');
  await assert.rejects(q.drain(), /already archived/);
});

test('add() waits no more once the stopping signal is aborted (SIGTERM while the repository is down)', { timeout: 60_000 }, async () => {
  const ac = new AbortController();
  const q = new StoreQueue(() => new Promise<void>(() => {}), 1, 1, { delayMs: () => 60_000, failed: () => {} }, ac.signal);
  await q.add('a'); // being stored (for ever)
  await q.add('b'); // waits: one may wait
  const third = q.add('c'); // past maxPending: waits for room
  let returned = false;
  void third.then(() => (returned = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(returned, false);
  ac.abort();
  await third;
  q.stop();
});

test('stop(): a store in flight that fails then is not tried again, and nothing more starts (the files stay for the next start)', { timeout: 60_000 }, async () => {
  let calls = 0;
  const q = new StoreQueue(async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 20));
    throw new Error('down');
  }, 1, 10, { delayMs: () => 10, failed: () => {} });
  await q.add('a');
  await q.add('b');
  q.stop();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(calls, 1);
});
