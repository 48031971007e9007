// Tests for how the S3 driver sends an object (src/storage/s3/s3-upload.ts and
// the SDK-free pieces around it: the part pool, the replayable body, the
// request handler wrapper), against a fake store that records what it is sent.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { PartPool } from '../../src/storage/s3/s3-part-pool.js';
import { ReplayableBody } from '../../src/storage/s3/s3-body.js';
import { payloadHashMiddleware, replayingHandler } from '../../src/storage/s3/s3-request-handler.js';
import { sendBuffer, sendStream, sendWhole } from '../../src/storage/s3/s3-upload.js';
import type { CompletedPart, ObjectSender } from '../../src/storage/s3/s3-upload.js';
import { completedBefore } from '../../src/storage/s3/s3-completed-before.js';

const PART = 1000;

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Chunks of the given sizes, in turn, cut from data. */
async function* chunked(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield data.subarray(off, off + n);
    off += n;
    await new Promise((r) => setImmediate(r));
  }
}

/** A store that keeps what it is sent (each body read as the HTTP handler would: a stream), with a delay per part. */
class FakeStore implements ObjectSender {
  object: Buffer | null = null;
  puts = 0;
  begun = 0;
  aborted = 0;
  completed: CompletedPart[] | null = null;
  readonly parts = new Map<number, Buffer>();
  inFlight = 0;
  maxInFlight = 0;
  failPart: number | null = null;
  bodiesSeen: ReplayableBody[] = [];

  constructor(private readonly delayMs = 2) {}

  async put(body: ReplayableBody): Promise<void> {
    this.puts++;
    this.object = await collect(body.stream());
  }

  async begin(): Promise<string> {
    this.begun++;
    return 'upload-1';
  }

  async part(uploadId: string, n: number, body: ReplayableBody): Promise<string> {
    assert.equal(uploadId, 'upload-1');
    this.bodiesSeen.push(body);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (n === this.failPart) throw new Error(`part ${n} refused`);
      const got = await collect(body.stream());
      assert.equal(createHash('sha256').update(got).digest('hex'), body.sha256);
      this.parts.set(n, got);
      return `"etag-${n}"`;
    } finally {
      this.inFlight--;
    }
  }

  async complete(uploadId: string, parts: CompletedPart[]): Promise<void> {
    assert.equal(uploadId, 'upload-1');
    this.completed = parts;
    this.object = Buffer.concat(parts.map((p) => this.parts.get(p.PartNumber)!));
  }

  async abort(): Promise<void> {
    this.aborted++;
  }
}

const options = (pool: PartPool, queue = 2) => ({ pool, queue, sourceFailed: (e: unknown) => new Error(`source: ${(e as Error).message}`) });

test('a source that fits in one part is one PUT of exactly its bytes (empty, short, exactly one part)', async () => {
  for (const size of [0, 1, 999, PART]) {
    const store = new FakeStore();
    const data = bytes(size, size + 1);
    await sendStream(chunked(data, [300, 7]), store, options(new PartPool(PART, 4)));
    assert.equal(store.puts, 1, `size ${size}`);
    assert.equal(store.begun, 0);
    assert.ok(store.object!.equals(data), `size ${size}`);
  }
});

test('a larger source is a multipart upload: full parts but the last, in order, the bytes whole, whatever the chunk sizes', async () => {
  for (const [size, sizes] of [
    [PART + 1, [PART + 1]],
    [5 * PART, [PART]],
    [7 * PART + 123, [1, 333, 2500, 64, 999]],
    [3 * PART, [3 * PART]],
  ] as [number, number[]][]) {
    const store = new FakeStore();
    const data = bytes(size, size);
    await sendStream(chunked(data, sizes), store, options(new PartPool(PART, 4)));
    assert.equal(store.puts, 0);
    assert.equal(store.begun, 1);
    assert.equal(store.aborted, 0);
    assert.deepEqual(store.completed!.map((p) => p.PartNumber), [...Array(Math.ceil(size / PART)).keys()].map((i) => i + 1));
    for (const [n, got] of store.parts) if (n < store.parts.size) assert.equal(got.length, PART, `part ${n} of ${size}`);
    assert.ok(store.object!.equals(data), `size ${size}, chunks ${sizes.join(',')}`);
  }
});

test('parts in flight stay within the queue; the pool makes no more buffers than its bound for several writes at once', async () => {
  const pool = new PartPool(PART, 5);
  const stores = [new FakeStore(5), new FakeStore(5), new FakeStore(5)];
  const datas = stores.map((_, i) => bytes(20 * PART + 17 * i, i + 7));
  await Promise.all(stores.map((s, i) => sendStream(chunked(datas[i]!, [250, 1200]), s, options(pool, 2))));
  for (const [i, s] of stores.entries()) {
    assert.ok(s.object!.equals(datas[i]!));
    assert.ok(s.maxInFlight <= 2, `write ${i}: ${s.maxInFlight} parts at once`);
  }
  assert.ok(pool.size <= 5, `${pool.size} buffers made`);
  // Reused: another write makes none.
  const before = pool.size;
  await sendStream(chunked(bytes(6 * PART), [PART]), new FakeStore(), options(pool));
  assert.equal(pool.size, before);
});

test('every write gets its first buffer even past the bound, and hands back what it took', () => {
  const pool = new PartPool(PART, 1);
  const a = pool.takeFirst();
  assert.equal(pool.tryTake(), null);
  const b = pool.takeFirst();
  assert.equal(pool.size, 2);
  pool.give(b); // past the bound: let go
  assert.equal(pool.size, 1);
  pool.give(a);
  assert.equal(pool.tryTake(), a);
});

test('a part that fails aborts the upload: the error comes out, nothing is completed, the source is stopped', async () => {
  const store = new FakeStore();
  store.failPart = 3;
  let stopped = false;
  async function* source(): AsyncGenerator<Buffer> {
    try {
      for (let i = 0; i < 100; i++) yield bytes(PART, i);
    } finally {
      stopped = true;
    }
  }
  const pool = new PartPool(PART, 4);
  await assert.rejects(sendStream(source(), store, options(pool)), /part 3 refused/);
  assert.equal(store.aborted, 1);
  assert.equal(store.completed, null);
  assert.ok(stopped, 'the source was not stopped');
  // Every buffer came back.
  assert.ok(pool.tryTake() !== null && pool.size <= 4);
});

test('a part that fails while the next one fills: that buffer goes back to the pool too (a long-lived pusher keeps its parallel parts)', async () => {
  // Part 2 is refused at once while part 1 is still on its way: part 3 fills a pooled buffer meanwhile.
  class FailsAtOnce extends FakeStore {
    override async part(uploadId: string, n: number, body: ReplayableBody): Promise<string> {
      if (n === 2) throw new Error('part 2 refused');
      return super.part(uploadId, n, body);
    }
  }
  const store = new FailsAtOnce(30);
  const pool = new PartPool(PART, 4);
  await assert.rejects(sendStream(chunked(bytes(8 * PART), [PART / 8]), store, options(pool, 4)), /part 2 refused/);
  assert.equal(store.aborted, 1);
  let free = 0;
  while (pool.tryTake() !== null) free++;
  assert.equal(free, pool.size, `${pool.size - free} buffer(s) never came back`);
});

test('a source that fails past the first part aborts the upload with the source\'s error', async () => {
  const store = new FakeStore();
  async function* source(): AsyncGenerator<Buffer> {
    yield bytes(PART);
    yield bytes(PART);
    yield bytes(10);
    throw new Error('disk gone');
  }
  await assert.rejects(sendStream(source(), store, options(new PartPool(PART, 4))), /^Error: source: disk gone$/);
  assert.equal(store.begun, 1);
  assert.equal(store.aborted, 1);
  assert.equal(store.completed, null);
  assert.equal(store.object, null);
});

test('a write that must be one PUT (sendWhole) sends a source of several parts as one PUT; one over its limit is refused before any request, and stopped', async () => {
  const store = new FakeStore();
  const data = bytes(5 * PART);
  async function* parts(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 5; i++) yield data.subarray(i * PART, (i + 1) * PART);
  }
  const fail = { tooLarge: () => new Error('too large'), sourceFailed: (e: unknown) => e as Error };
  await sendWhole(parts(), store, { limit: 5 * PART, ...fail });
  assert.equal(store.puts, 1);
  assert.equal(store.begun, 0);
  assert.ok(store.object?.equals(data));

  const refusing = new FakeStore();
  let stopped = false;
  async function* source(): AsyncGenerator<Buffer> {
    try {
      for (let i = 0; i < 5; i++) yield bytes(PART);
    } finally {
      stopped = true;
    }
  }
  await assert.rejects(sendWhole(source(), refusing, { limit: 4 * PART, ...fail }), /too large/);
  await assert.rejects(sendWhole(bytes(4 * PART + 1), refusing, { limit: 4 * PART, ...fail }), /too large/);
  assert.equal(refusing.begun + refusing.puts, 0);
  assert.ok(stopped);
});

test('a Buffer larger than a part is sent in slices of it, not copies', async () => {
  const store = new FakeStore();
  const data = bytes(4 * PART + 1);
  await sendBuffer(data, store, PART, 2);
  assert.ok(store.object!.equals(data));
  assert.equal(store.completed!.length, 5);
  for (const b of store.bodiesSeen) assert.equal(b.data.buffer, data.buffer);
  const small = new FakeStore();
  await sendBuffer(bytes(PART), small, PART, 2);
  assert.equal(small.puts, 1);
});

test('a replayable body gives its whole bytes on every stream, in slices, and stops its streams on release', async () => {
  const data = bytes(700 * 1024);
  const body = new ReplayableBody(data);
  assert.equal(body.sha256, createHash('sha256').update(data).digest('hex'));
  assert.ok((await collect(body.stream())).equals(data));
  assert.ok((await collect(body.stream())).equals(data));
  const open = body.stream();
  body.release();
  assert.ok(open.destroyed);
});

test('the request handler gives each attempt a fresh stream of a replayable body, and leaves other requests alone', async () => {
  const seen: unknown[] = [];
  const inner = {
    async handle(request: { body?: unknown; headers: Record<string, string> }) {
      seen.push(request.body);
      if (request.body instanceof Readable) return (await collect(request.body)).toString();
      return request.body;
    },
    metadata: { handlerProtocol: 'http/1.1' },
  };
  const handler = replayingHandler(inner);
  const body = new ReplayableBody(Buffer.from('the same bytes each time'));
  const request = { body, headers: {} as Record<string, string> };
  assert.equal(await handler.handle(request), 'the same bytes each time');
  assert.equal(await handler.handle(request), 'the same bytes each time');
  assert.equal(request.body, body, 'the request itself is not changed');
  assert.notEqual(seen[0], seen[1]);
  const plain = Buffer.from('plain');
  assert.equal(await handler.handle({ body: plain, headers: {} }), plain);
  assert.deepEqual(handler.metadata, { handlerProtocol: 'http/1.1' });

  const headers: Record<string, string> = {};
  await payloadHashMiddleware(async () => undefined)({ request: { body, headers } });
  assert.equal(headers['x-amz-content-sha256'], body.sha256);
  const other: Record<string, string> = {};
  await payloadHashMiddleware(async () => undefined)({ request: { body: plain, headers: other } });
  assert.deepEqual(other, {});
});

test('a source failing while a pooled part buffer fills gives that buffer back: the pool can hand out all its buffers again', async () => {
  const pool = new PartPool(PART, 2);
  async function* failing(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 3; i++) yield bytes(PART, i + 1);
    yield bytes(PART / 2);
    throw new Error('disk read failed');
  }
  // The store answers slowly: the write's own buffer is still in flight when the next parts fill pooled ones.
  await assert.rejects(sendStream(failing(), new FakeStore(20), options(pool, 4)), /source: disk read failed/);
  // Its bound of extra buffers, all back (the write's own first buffer, made past the bound, is let go).
  const taken = [pool.tryTake(), pool.tryTake()];
  assert.ok(taken.every((b) => b !== null), 'a buffer of the pool was lost');
  assert.equal(pool.size, 2);
});

test('a completion retried after a lost answer, met by NoSuchUpload: the object is taken as ours only with the ETag its parts make', async () => {
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  const parts = [{ PartNumber: 1, ETag: `"${md5('a')}"` }, { PartNumber: 2, ETag: `"${md5('b')}"` }];
  const ours = `"${createHash('md5').update(Buffer.concat([Buffer.from(md5('a'), 'hex'), Buffer.from(md5('b'), 'hex')])).digest('hex')}-2"`;
  const gone = (attempts: number) => Object.assign(new Error('The specified upload does not exist'), { name: 'NoSuchUpload', $metadata: { httpStatusCode: 404, attempts } });
  assert.equal(await completedBefore(gone(2), parts, async () => ({ ETag: ours })), true);
  assert.equal(await completedBefore(gone(1), parts, async () => ({ ETag: ours })), false, 'a first attempt refused: no upload of ours was ever completed');
  assert.equal(await completedBefore(gone(2), parts, async () => ({ ETag: `"${md5('ab')}"` })), false, 'another object (or an ETag that says nothing)');
  assert.equal(await completedBefore(gone(2), parts, async () => Promise.reject(new Error('404'))), false);
  const denied = Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403, attempts: 2 } });
  assert.equal(await completedBefore(denied, parts, async () => ({ ETag: ours })), false);
});
