// How the S3 driver sends an object's bytes: one PUT when they fit in one part,
// else a multipart upload of parts sent `queue` at a time while the next one
// fills, aborted when anything fails (the source, a part, the completion).
// Parts are filled into the storage's pooled buffers (s3-part-pool.ts) and
// sent as replayable streams (s3-body.ts). The requests themselves are the
// driver's (ObjectSender); their errors come out as they are thrown. SDK-free.

import { ReplayableBody } from './s3-body.js';
import type { PartPool } from './s3-part-pool.js';

/** S3's limit on the parts of one upload. */
export const MAX_PARTS = 10_000;

export interface CompletedPart {
  PartNumber: number;
  ETag: string;
}

export interface ObjectSender {
  /** One PUT of the whole object. */
  put(body: ReplayableBody): Promise<void>;
  /** CreateMultipartUpload: the upload id. */
  begin(): Promise<string>;
  /** UploadPart: the part's ETag. */
  part(uploadId: string, partNumber: number, body: ReplayableBody): Promise<string>;
  complete(uploadId: string, parts: CompletedPart[]): Promise<void>;
  abort(uploadId: string): Promise<void>;
}

export interface StreamUpload {
  pool: PartPool;
  /** Parts sent at once. */
  queue: number;
  /** The error for a source that fails (its own error, or the write's). */
  sourceFailed(e: unknown): Error;
}

/** Sends a source of unknown length: one PUT if it fits in one part, else a multipart upload. */
export async function sendStream(source: AsyncIterable<Buffer>, sender: ObjectSender, o: StreamUpload): Promise<void> {
  const parts = new PartSource(source[Symbol.asyncIterator](), o.sourceFailed);
  const own = o.pool.takeFirst();
  let ownBusy = false;
  let multipart: Multipart | null = null;
  try {
    const n = await parts.fill(own);
    if (!(await parts.more())) {
      await sendOnce(own.subarray(0, n), (b) => sender.put(b));
      return;
    }
    multipart = new Multipart(sender, await sender.begin(), o.queue);
    ownBusy = true;
    multipart.send(own.subarray(0, n), () => (ownBusy = false));
    for (;;) {
      // The next part fills the write's own buffer once sent, or one more from the pool, else
      // the write waits for one of its parts (never for another write's buffers).
      let buf: Buffer | null = null;
      let pooled = false;
      while (buf === null) {
        if (!ownBusy) buf = own;
        else if ((buf = o.pool.tryTake()) !== null) pooled = true;
        else await multipart.oneSettled();
      }
      const b = buf;
      const giveBack = () => (pooled ? o.pool.give(b) : (ownBusy = false));
      let len: number;
      let last: boolean;
      try {
        len = await parts.fill(b);
        last = !(await parts.more());
        // One part fills while `queue` are sent.
        while (multipart.inFlight >= o.queue) await multipart.oneSettled();
      } catch (e) {
        // Not handed to a part: a pooled buffer goes back now (a long-lived pusher would lose it for good).
        giveBack();
        throw e;
      }
      if (b === own) ownBusy = true;
      multipart.send(b.subarray(0, len), giveBack);
      if (last) break;
    }
    await multipart.complete();
  } catch (e) {
    await parts.stop();
    if (multipart !== null) await multipart.abort();
    throw e;
  } finally {
    // Every part has settled here (complete() and abort() wait for them).
    o.pool.give(own);
  }
}

/** Sends a Buffer larger than a part as a multipart upload of its slices (no copy). */
export async function sendBuffer(data: Buffer, sender: ObjectSender, partSize: number, queue: number): Promise<void> {
  if (data.length <= partSize) return sendOnce(data, (b) => sender.put(b));
  const multipart = new Multipart(sender, await sender.begin(), queue);
  try {
    for (let off = 0; off < data.length; off += partSize) {
      while (multipart.inFlight >= queue) await multipart.oneSettled();
      multipart.send(data.subarray(off, off + partSize), () => {});
    }
    await multipart.complete();
  } catch (e) {
    await multipart.abort();
    throw e;
  }
}

/**
 * Sends an object that must be one PUT, whatever its size (a conditional write: a multipart
 * upload cannot be made conditional on every store, and S3 takes up to 5 GiB in one PUT). A
 * source is gathered first; one longer than `limit` is refused before any request, and stopped.
 */
export async function sendWhole(source: Buffer | AsyncIterable<Buffer>, sender: ObjectSender, o: { limit: number; tooLarge(): Error; sourceFailed(e: unknown): Error }): Promise<void> {
  let data: Buffer;
  if (Buffer.isBuffer(source)) data = source;
  else {
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of source) {
        n += c.length;
        if (n > o.limit) break; // leaving the loop stops the source
        chunks.push(c);
      }
    } catch (e) {
      throw o.sourceFailed(e);
    }
    if (n > o.limit) throw o.tooLarge();
    data = Buffer.concat(chunks, n);
  }
  if (data.length > o.limit) throw o.tooLarge();
  await sendOnce(data, (b) => sender.put(b));
}

async function sendOnce(data: Buffer, send: (b: ReplayableBody) => Promise<unknown>): Promise<void> {
  const body = new ReplayableBody(data);
  try {
    await send(body);
  } finally {
    body.release();
  }
}

/** One multipart upload: its parts in flight, those done, the first failure. */
class Multipart {
  private readonly done: CompletedPart[] = [];
  private readonly flying = new Set<Promise<void>>();
  private failure: { e: unknown } | null = null;
  private next = 1;

  constructor(
    private readonly sender: ObjectSender,
    private readonly uploadId: string,
    private readonly queue: number,
  ) {}

  get inFlight(): number {
    return this.flying.size;
  }

  /** Starts sending `data` as the next part; `settled` runs once the request is over (its buffer is free). */
  send(data: Buffer, settled: () => void): void {
    try {
      this.throwIfFailed();
      if (this.next > MAX_PARTS) throw new Error(`the object needs more than ${MAX_PARTS} parts of ${data.length} bytes, the most a multipart upload takes`);
    } catch (e) {
      settled(); // not handed to a part: its buffer is free (a pooled one goes back to the pool)
      throw e;
    }
    const partNumber = this.next++;
    const body = new ReplayableBody(data);
    const p: Promise<void> = this.sender.part(this.uploadId, partNumber, body).then(
      (ETag) => void this.done.push({ PartNumber: partNumber, ETag }),
      (e: unknown) => void (this.failure ??= { e }),
    );
    const tracked = p.finally(() => {
      body.release();
      this.flying.delete(tracked);
      settled();
    });
    this.flying.add(tracked);
    if (this.flying.size > this.queue) throw new Error('internal: more parts in flight than the queue allows');
  }

  /** Waits until a part is over; throws the first failure. */
  async oneSettled(): Promise<void> {
    if (this.flying.size > 0) await Promise.race(this.flying);
    this.throwIfFailed();
  }

  async complete(): Promise<void> {
    await Promise.all(this.flying);
    this.throwIfFailed();
    this.done.sort((a, b) => a.PartNumber - b.PartNumber);
    await this.sender.complete(this.uploadId, this.done);
  }

  /** After a failure: waits for the parts in flight, then aborts the upload (best effort: check lists what is left). */
  async abort(): Promise<void> {
    await Promise.allSettled(this.flying);
    await this.sender.abort(this.uploadId).catch(() => {});
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure.e;
  }
}

/** A source read into part buffers: a chunk that straddles two parts is carried over. */
class PartSource {
  private carry: Buffer | null = null;
  private ended = false;

  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly failed: (e: unknown) => Error,
  ) {}

  /** Fills `buf` from the source; the bytes put in (fewer than its length only at the end). */
  async fill(buf: Buffer): Promise<number> {
    let n = 0;
    while (n < buf.length && (this.carry !== null || (await this.pull()))) {
      const chunk = this.carry!;
      const k = chunk.copy(buf, n);
      n += k;
      this.carry = k < chunk.length ? chunk.subarray(k) : null;
    }
    return n;
  }

  /** Whether bytes remain (reads ahead one chunk). */
  async more(): Promise<boolean> {
    return this.carry !== null || (await this.pull());
  }

  /** Stops the source early (after a failure): whoever feeds it must not wait. */
  async stop(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await this.it.return?.();
    } catch {
      /* it failed already */
    }
  }

  /** The next non-empty chunk into carry; false at the end. */
  private async pull(): Promise<boolean> {
    while (!this.ended) {
      let r: IteratorResult<Buffer>;
      try {
        r = await this.it.next();
      } catch (e) {
        this.ended = true;
        throw this.failed(e);
      }
      if (r.done) {
        this.ended = true;
        return false;
      }
      const v = r.value as Buffer | Uint8Array;
      const chunk = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      if (chunk.length > 0) {
        this.carry = chunk;
        return true;
      }
    }
    return false;
  }
}
