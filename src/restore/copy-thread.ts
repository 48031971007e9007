// One copier thread (copy-worker.ts) seen from restore's main thread: run()
// hands it a file and resolves with its answer; one file at a time. A file
// whose stored bytes are not a local file is streamed to it: batches of 1 MiB,
// transferred, at most a few in flight (the copier acknowledges each one), so
// that a fast network and a slow disk never pile bytes up in memory.

import { Worker } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import { isFinal } from './copy-job.js';
import { endThread } from '../common/thread-exit.js';
import type { CopyJob, CopyReply, FromCopier, ToCopier } from './copy-job.js';

const BATCH = 1 << 20;
const IN_FLIGHT = 4;
/**
 * A copier's young generation: its garbage is small objects (messages, job records) pointing at
 * buffers outside the heap. With V8's default each copier's heap grew to 40-45 MB restoring
 * 101,000 files (as backup's reader threads did: parallel/read-pool.ts).
 */
const YOUNG_GENERATION_MB = 4;

export class CopyThread {
  private readonly worker: Worker;
  /** Called with each message of the job under way. */
  private listener: ((m: FromCopier) => void) | null = null;
  private broken: Error | null = null;
  private onBroken: ((e: Error) => void) | null = null;

  constructor() {
    this.worker = new Worker(new URL('./copy-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    this.worker.on('message', (m: FromCopier) => this.listener?.(m));
    const fail = (e: Error): void => {
      this.broken ??= e;
      this.onBroken?.(this.broken);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`a restore copier thread exited (code ${code})`)));
  }

  /**
   * Restores one file. With job.source null the stored bytes come from open() (called only when
   * the copier wants them: not for a delta's unchanged file); a failure of that stream is thrown
   * once the copier has removed what it wrote.
   */
  async run(job: CopyJob, open?: () => Promise<Readable | null>): Promise<CopyReply> {
    if (this.broken) throw this.broken;
    if (this.listener) throw new Error('a restore copier thread was handed two files at once');
    // Every message of this job, in order, and the thread's failure, through one queue.
    const inbox: FromCopier[] = [];
    let wake: (() => void) | null = null;
    this.listener = (m) => {
      inbox.push(m);
      wake?.();
    };
    this.onBroken = () => wake?.();
    const next = async (): Promise<FromCopier> => {
      for (;;) {
        if (this.broken) throw this.broken;
        const m = inbox.shift();
        if (m) return m;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    };
    const post = (m: ToCopier, transfer?: ArrayBuffer[]): void => this.worker.postMessage(m, transfer);
    try {
      post({ type: 'job', job });
      const first = await next();
      if (isFinal(first)) return first;
      const source = open ? await open() : null;
      if (source === null) {
        post({ type: 'abort' });
        await untilFinal(next);
        return { id: job.id, status: 'failed', failure: 'missing', detail: 'missing' };
      }
      return await stream(source, post, next);
    } finally {
      this.listener = null;
      this.onBroken = null;
    }
  }

  async stop(): Promise<void> {
    this.broken ??= new Error('the restore copier thread was stopped');
    await endThread(this.worker);
  }
}

/** The copier's final answer, skipping acknowledgements. */
async function untilFinal(next: () => Promise<FromCopier>): Promise<CopyReply> {
  for (;;) {
    const m = await next();
    if (isFinal(m)) return m;
  }
}

/** Sends the stored bytes in batches, at most IN_FLIGHT unacknowledged; stops at the copier's first final answer. */
async function stream(source: Readable, post: (m: ToCopier, transfer?: ArrayBuffer[]) => void, next: () => Promise<FromCopier>): Promise<CopyReply> {
  let inFlight = 0;
  let final: CopyReply | null = null;
  const drainTo = async (limit: number): Promise<void> => {
    while (final === null && inFlight > limit) {
      const m = await next();
      if (isFinal(m)) final = m;
      else if (m.status === 'ack') {
        inFlight--;
        spare.push(m.data);
      }
    }
  };
  /** Batch buffers the copier handed back, reused (each is BATCH bytes, its own ArrayBuffer). */
  const spare: ArrayBuffer[] = [];
  const fresh = (): Buffer => {
    const ab = spare.pop();
    return ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(BATCH);
  };
  let batch = fresh();
  let filled = 0;
  const send = async (): Promise<void> => {
    await drainTo(IN_FLIGHT - 1);
    if (final !== null) return;
    // The batch's own ArrayBuffer (allocUnsafeSlow: not a pool's), handed over whole.
    const ab = batch.buffer as ArrayBuffer;
    post({ type: 'chunk', data: ab, length: filled }, [ab]);
    inFlight++;
    filled = 0;
    batch = fresh();
  };
  try {
    for await (const chunk of source) {
      const c = chunk as Buffer;
      for (let at = 0; at < c.length && final === null; ) {
        const n = Math.min(c.length - at, BATCH - filled);
        c.copy(batch, filled, at, at + n);
        filled += n;
        at += n;
        if (filled === BATCH) await send();
      }
      if (final !== null) break;
    }
  } catch (e) {
    source.destroy();
    if (final === null) {
      post({ type: 'abort' });
      await untilFinal(next);
    }
    throw e;
  }
  if (final !== null) {
    source.destroy();
    return final;
  }
  if (filled > 0) await send();
  if (final !== null) return final;
  post({ type: 'end' });
  return untilFinal(next);
}
