// The sql read method's readers: N threads (sql-read-worker.ts), each with its
// own connection to the server, behind the same pool as the direct method's
// threads (read-pool.ts: flow credits, one rate budget, bytes done, abort).
// open() returns once every connection is made, so that a server that will not
// take them refuses -j before the backup starts; the listing is asked for
// through the first thread's connection; stop() closes the connections with a
// goodbye before the threads end.

import type { ConnectionSettings } from '../../protocol/conninfo.js';
import type { FileReaders, JobHandlers, ReadDone, ReadJob, TarPlaces } from './read-job.js';
import type { ListedTablespace } from './listing.js';
import type { SqlListingOptions } from './sql-listing.js';
import type { SqlWorkerData } from './sql-read-worker.js';
import type { SqlWorkerReply } from './sql-worker-messages.js';
import { ReadPool } from './read-pool.js';
import { PgpitrError } from '../../common/errors.js';

/** How long stop() waits for the threads to say goodbye to the server before ending them. */
const CLOSE_WAIT_MS = 2000;
const YOUNG_GENERATION_MB = 2;

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

interface Queued {
  job: ReadJob;
  dest: string;
  handlers: JobHandlers | null;
  resolve(r: ReadDone): void;
  reject(e: Error): void;
}

export class SqlReadPool implements FileReaders {
  readonly writesLocal = true;
  private readonly queue: Queued[] = [];
  /** Jobs with a local file handed to the threads and not settled; the files, with how many jobs write each. */
  private running = 0;
  private readonly writing = new Map<string, number>();
  private readonly pool: ReadPool;
  private onFailure: (e: Error) => void = () => {};
  private readonly opened: Waiter<void>[] = [];
  private readonly openedAll: Promise<void>;
  private listing: Waiter<ListedTablespace[]> | null = null;
  private closed = 0;
  private allClosed: (() => void) | null = null;
  private stopped = false;

  private constructor(size: number, connection: ConnectionSettings) {
    const opens = Array.from({ length: size }, (_, i) => new Promise<void>((resolve, reject) => (this.opened[i] = { resolve, reject })));
    this.openedAll = Promise.all(opens).then(() => {});
    this.openedAll.catch(() => {});
    this.pool = new ReadPool(size, (e) => this.fail(e), {
      script: new URL('./sql-read-worker.js', import.meta.url),
      data: (index): Omit<SqlWorkerData, 'index' | 'buffers' | 'returns'> => ({ connection, label: `backup reader connection ${index + 1}` }),
      onControl: (i, m) => this.onControl(i, m as SqlWorkerReply),
      // A small young generation: each socket read leaves a dead buffer of up to 64 KiB outside the
      // heap, freed only when the small objects pointing at them are collected. With the default
      // size, ~40 MB more peak RSS (-Ft -j 2 at scale 100: 236-249 MB, with 2 MB: 200-207 MB).
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
  }

  /** N threads with their connections made; fails (with the threads ended) when one cannot connect. */
  static async open(size: number, connection: ConnectionSettings): Promise<SqlReadPool> {
    const p = new SqlReadPool(size, connection);
    try {
      await p.openedAll;
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  /** Where a failure of the readers goes once the backup runs (parallel-backup.ts's openReaders). */
  reportFailuresTo(onFailure: (e: Error) => void): void {
    this.onFailure = onFailure;
  }

  private fail(e: Error): void {
    for (const w of this.opened) w.reject(e);
    this.listing?.reject(e);
    this.listing = null;
    if (!this.stopped) this.onFailure(e);
  }

  private onControl(i: number, m: SqlWorkerReply): void {
    if (m.kind === 'opened') this.opened[i]!.resolve();
    else if (m.kind === 'listed') {
      this.listing?.resolve(m.listing);
      this.listing = null;
    } else if (m.kind === 'closed') {
      if (++this.closed === this.size) this.allClosed?.();
    } else {
      const e = new PgpitrError(m.error?.code ?? 'ERR_INTERNAL', m.message, { ...(m.error?.hint !== undefined ? { hint: m.error.hint } : {}), ...(m.error?.detail !== undefined ? { detail: m.error.detail } : {}) });
      this.opened[i]!.reject(e);
      this.listing?.reject(e);
      this.listing = null;
    }
  }

  /** What to copy, listed through the first thread's connection (sql-listing.ts). */
  list(options: SqlListingOptions): Promise<ListedTablespace[]> {
    if (this.listing) throw new PgpitrError('ERR_INTERNAL', 'one listing at a time');
    const listed = new Promise<ListedTablespace[]>((resolve, reject) => (this.listing = { resolve, reject }));
    this.pool.post(0, { kind: 'list', options });
    return listed;
  }

  get size(): number {
    return this.pool.size;
  }

  get doneBytes(): number {
    return this.pool.doneBytes;
  }

  get tarPlaces(): TarPlaces {
    return this.pool.tarPlaces;
  }

  limitRate(bytesPerSecond: number): void {
    this.pool.limitRate(bytesPerSecond);
  }

  abort(e: Error): void {
    this.pool.abort(e);
  }

  /**
   * Jobs that write a local file (plain format; their order is free) are handed to the
   * threads so that two threads do not write the same file at once when another file is
   * waiting: the first queued job writing a file no thread writes goes first. Two threads
   * writing ranges of one file contend for its inode lock and the kernel spins on it: at
   * scale 100, -Fp -N -j 2 took 5.2-6.5 s of system CPU with ranges of one file side by side,
   * 3.7-4.2 s with no ranges. Other jobs (tar members, stored files) keep their order.
   */
  run(job: ReadJob, handlers: JobHandlers | null): Promise<ReadDone> {
    if (job.dest === null) return this.pool.run(job, handlers);
    return new Promise<ReadDone>((resolve, reject) => {
      this.queue.push({ job, dest: job.dest!.path, handlers, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.running < this.size && this.queue.length > 0) {
      const k = this.queue.findIndex((q) => !this.writing.has(q.dest));
      const [q] = this.queue.splice(Math.max(0, k), 1) as [Queued];
      this.running++;
      this.writing.set(q.dest, (this.writing.get(q.dest) ?? 0) + 1);
      void this.pool
        .run(q.job, q.handlers)
        .finally(() => {
          this.running--;
          const n = this.writing.get(q.dest)! - 1;
          if (n === 0) this.writing.delete(q.dest);
          else this.writing.set(q.dest, n);
          this.dispatch();
        })
        .then(q.resolve, q.reject);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Each thread closes its connection once its job (if any) is dropped or done; a thread
    // blocked or gone is ended all the same after a while.
    const closed = new Promise<void>((r) => (this.allClosed = r));
    this.pool.abort(new PgpitrError('ERR_INTERNAL', 'the backup reader connections were stopped'));
    for (let i = 0; i < this.size; i++) this.pool.post(i, { kind: 'close' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    await this.pool.stop();
  }
}
