// The reader threads of one parallel backup, seen from its main thread. A job
// is handed to a free worker, or queued behind a short one (the worker then goes
// on to it without waiting for the main thread); its chunks (when it has no local
// destination) and its answer come back through callbacks. The pool owns the shared counters:
// flow credits are granted back as the main thread consumes chunks, so a worker
// never runs more than CREDITS chunks ahead of the sink.

import { MessageChannel, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { FileReaders, JobHandlers, ReadDone, ReadJob, ReadReply } from './read-job.js';
import { SharedCounters } from './shared-counters.js';
import { PgpitrError, SOURCE_DENIED_HINT } from '../../common/errors.js';
import { LENT } from './lent-buffers.js';
import { endThread } from '../../common/thread-exit.js';

/** Which threads to start: read-worker.ts unless told otherwise (the sql read method's threads). */
export interface ReadPoolThreads {
  script: URL;
  /** More workerData for each thread (its index and the shared counters are always given). */
  data?(index: number): Record<string, unknown>;
  /** The threads' heap limits (worker_threads ResourceLimits). */
  resourceLimits?: { maxYoungGenerationSizeMb?: number };
  /** A message of the thread's own (id -1), not about a job. */
  onControl?(index: number, message: unknown): void;
}

/**
 * A reader thread's young generation, unless told otherwise: its garbage is small objects pointing
 * at buffers outside the heap, freed only when those are collected. With the default, each direct
 * reader's heap grew to 25-45 MB (repository backup -j 2 of 98,000 files); with 2 MB, 16-18 MB.
 */
const YOUNG_GENERATION_MB = 2;

/** Chunks (1 MiB) a worker may hand back before the main thread consumed them. */
const CREDITS = 4;

/**
 * Jobs a worker holds at once: the one it runs and one queued behind it, which it starts
 * with no round trip through the main thread. A cluster's hundreds of small files cost
 * that round trip each otherwise, the readers idle while the main thread, busy with the
 * answers of both, hands out the next (bench/RESULTS.md, parallel backup).
 */
const DEPTH = 2;
/** A job is queued only behind one this short (bytes): behind a long one it could wait while another worker is free. */
const QUEUE_BEHIND = 8 * 1024 * 1024;

type DoneReply = ReadDone;

interface Running {
  job: ReadJob;
  handlers: JobHandlers | null;
  resolve(r: DoneReply): void;
  reject(e: Error): void;
  /** Chunks delivered, in order: each waits for the one before. */
  tail: Promise<void>;
}

export class ReadPool implements FileReaders {
  readonly writesLocal = true;
  readonly counters: SharedCounters;
  private readonly workers: Worker[] = [];
  /** Per worker: where lent buffers go back once their handler released them (read with receiveMessageOnPort there). */
  private readonly returns: MessagePort[] = [];
  /** Per worker, its jobs in the order it runs them: the first is running. */
  private readonly queues: Running[][] = [];
  /** Jobs whose worker has finished reading, whose chunks the sink has not all taken yet. */
  private readonly draining = new Set<Running>();
  /** Jobs not handed to a worker yet, in the order they were asked for: handed out in that order (dispatch). */
  private readonly pending: Running[] = [];
  private broken: Error | null = null;
  private rateTimer: NodeJS.Timeout | null = null;

  constructor(
    size: number,
    private readonly onFailure: (e: Error) => void,
    private readonly threads: ReadPoolThreads | null = null,
  ) {
    this.counters = SharedCounters.create(size);
    for (let i = 0; i < size; i++) {
      // The return port carries lent chunk buffers back (lent-buffers.ts).
      const { port1, port2 } = new MessageChannel();
      const script = threads?.script ?? new URL('./read-worker.js', import.meta.url);
      const w = new Worker(script, {
        workerData: { ...threads?.data?.(i), index: i, buffers: this.counters.buffers, returns: port2 },
        transferList: [port2],
        resourceLimits: threads?.resourceLimits ?? { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
      });
      port1.unref();
      this.returns.push(port1);
      w.on('message', (m: ReadReply) => this.onMessage(i, m));
      const fail = (e: Error) => this.fail(e);
      w.on('error', fail);
      w.on('exit', (code) => fail(new Error(`a backup reader thread exited (code ${code})`)));
      this.workers.push(w);
      this.queues.push([]);
      this.counters.grant(i, CREDITS);
    }
  }

  get doneBytes(): number {
    return this.counters.doneBytes;
  }

  get tarPlaces(): SharedCounters {
    return this.counters;
  }

  get size(): number {
    return this.workers.length;
  }

  /** A rate for all workers together (-r), in bytes per second. */
  limitRate(bytesPerSecond: number): void {
    const tickMs = 100;
    const perTick = Math.max(1, Math.round((bytesPerSecond * tickMs) / 1000));
    this.counters.limitRate();
    this.counters.refill(perTick, perTick);
    this.rateTimer = setInterval(() => this.counters.refill(perTick, perTick), tickMs);
    this.rateTimer.unref();
  }

  /** Runs a job on the next free worker (or behind a short job); resolves with its answer. */
  async run(job: ReadJob, handlers: JobHandlers | null): Promise<DoneReply> {
    if (this.broken) throw this.broken;
    return new Promise<DoneReply>((resolve, reject) => {
      this.pending.push({ job, handlers, resolve, reject, tail: Promise.resolve() });
      this.dispatch();
    });
  }

  /**
   * Hands pending jobs to workers, strictly in the order they were asked for, while there is a
   * place. The order matters: jobs of a tar stream wait for the ones before them (their turn),
   * so a later job running while an earlier one waits for a place could wait forever.
   */
  private dispatch(): void {
    while (this.pending.length > 0 && !this.broken) {
      const i = this.pick();
      if (i < 0) return;
      const r = this.pending.shift()!;
      this.queues[i]!.push(r);
      this.workers[i]!.postMessage(r.job);
    }
  }

  /** A free worker, else one with room behind a short job; -1 when none. */
  private pick(): number {
    let behind = -1;
    for (let i = 0; i < this.queues.length; i++) {
      const q = this.queues[i]!;
      if (q.length === 0) return i;
      if (behind < 0 && q.length < DEPTH && q[0]!.job.length <= QUEUE_BEHIND) behind = i;
    }
    return behind;
  }

  /** Sends a thread a message of its own (see ReadPoolThreads.onControl). */
  post(i: number, message: unknown): void {
    this.workers[i]!.postMessage(message);
  }

  private onMessage(i: number, m: ReadReply): void {
    if (m.id === -1) {
      this.threads?.onControl?.(i, m);
      return;
    }
    const r = this.queues[i]![0];
    if (!r) return;
    if (m.kind === 'chunk') {
      const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      // Both read methods' threads take lent buffers back from their return port (lent-buffers.ts).
      const release = r.job.lend && m.data.buffer.byteLength === LENT ? this.releaser(i, m.data.buffer as ArrayBuffer) : undefined;
      r.tail = r.tail.then(async () => {
        await r.handlers?.chunk(data, release, m.read);
        this.counters.grant(i, 1);
      });
      r.tail.catch((e: Error) => this.fail(e));
      return;
    }
    // The worker goes on to its next job now; this one's chunks may still be on their way to the
    // sink (flow credits bound how many it hands back before they are), and it settles after them.
    this.queues[i]!.shift();
    this.draining.add(r);
    this.dispatch();
    void r.tail
      .then(() => {
        if (m.kind === 'done') r.resolve(m);
        else if (m.error) r.reject(Object.assign(new PgpitrError(m.error.code, m.message, { hint: m.error.hint, detail: m.error.detail }), { path: m.path }));
        else if (m.path === r.job.source && (m.code === 'EACCES' || m.code === 'EPERM')) r.reject(Object.assign(new PgpitrError('ERR_STORAGE', `${m.message} (a file of the cluster being backed up)`, { hint: SOURCE_DENIED_HINT }), { path: m.path }));
        else r.reject(Object.assign(new Error(m.message), { path: m.path, code: m.code }));
      }, r.reject)
      .finally(() => this.draining.delete(r));
  }

  /** Gives a lent buffer back to its worker, once: the handler holds no reference to it any more. */
  private releaser(i: number, buffer: ArrayBuffer): () => void {
    let done = false;
    return () => {
      if (done || this.broken) return;
      done = true;
      this.returns[i]!.postMessage(buffer, [buffer]);
    };
  }

  /** Stops every job now, failing them with `e` (the backup was lost or interrupted elsewhere). */
  abort(e: Error): void {
    this.fail(e);
  }

  private fail(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    this.rejectAll(e);
    this.onFailure(e);
  }

  /** Every job not settled fails with `e`: nothing waits for a reader that will not answer. */
  private rejectAll(e: Error): void {
    this.counters.abort();
    for (const q of this.queues) for (const r of q.splice(0)) r.reject(e);
    for (const r of this.draining) r.reject(e);
    for (const r of this.pending.splice(0)) r.reject(e);
  }

  async stop(): Promise<void> {
    this.broken ??= new Error('the backup reader threads were stopped');
    if (this.rateTimer) clearInterval(this.rateTimer);
    this.rejectAll(this.broken);
    await Promise.all(this.workers.map((w) => endThread(w)));
    for (const p of this.returns) p.close();
  }
}
