// The sql read method's readers: N connections of their own reading server
// files through pg_read_binary_file (sql-file-read.ts), in 1 MiB chunks (each
// one query, its bytes in rows of SQL_ROW).
//
// The connections share chunks, not files: jobs are queued in the order they
// are run (which is the order of their tar members), and every free connection
// asks for the next chunk of the first job not yet fully asked for. A large file
// is thus read by all connections at once, and the chunks of each job are
// verified (page checksums, with the server's torn-page rule: a failing page is
// read once more), summed (the manifest checksum) and handed over in order on
// the main thread. At most WINDOW_PER_CONNECTION × N chunks are read and not yet
// consumed: the chunk handlers' promises hold the connections back (flow
// control), and memory does not grow with the database. One rate budget (-r)
// for all connections.

import type { Session } from '../../protocol/session.js';
import type { ChecksumFailure, FileReaders, JobHandlers, ReadDone, ReadJob } from './read-job.js';
import { verifyPage, PAGE_SIZE } from '../../postgres/page-checksum.js';
import { createManifestChecksum, crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { crc32c } from '../../storage/filter/crc32c.js';
import { PgpitrError, isPgpitrError } from '../../common/errors.js';
import { RateBudget } from './rate-budget.js';
import { readServerFileChunk } from './sql-file-read.js';

/** Bytes per query: enough that a query's round trip is small beside its transfer. */
export const SQL_CHUNK = 1024 * 1024;
const WINDOW_PER_CONNECTION = 3;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** A slot whose chunk was consumed (it no longer holds the bytes). */
const TAKEN: Deferred<Buffer[] | null> = deferred<Buffer[] | null>();
TAKEN.resolve(null);

interface QueuedJob {
  job: ReadJob;
  /** Chunks in all (at least one: an empty file is asked for once, to learn whether it is still there). */
  chunks: number;
  /** Chunks asked for so far. */
  asked: number;
  slots: Deferred<Buffer[] | null>[];
  cancelled: boolean;
}

interface Fetch {
  path: string;
  offset: number;
  length: number;
  into: Deferred<Buffer[] | null>;
}

export class SqlReaders implements FileReaders {
  readonly writesLocal = false;
  private readonly queue: QueuedJob[] = [];
  private readonly urgent: Fetch[] = [];
  private readonly active = new Set<QueuedJob>();
  private readonly idle: (() => void)[] = [];
  private inWindow = 0;
  private done = 0;
  private broken: Error | null = null;
  private rate: RateBudget | null = null;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly sessions: Session[],
    private readonly onFailure: (e: Error) => void,
  ) {
    this.loops = sessions.map((s) => this.loop(s));
  }

  get size(): number {
    return this.sessions.length;
  }

  get doneBytes(): number {
    return this.done;
  }

  limitRate(bytesPerSecond: number): void {
    this.rate = new RateBudget(bytesPerSecond);
  }

  async run(job: ReadJob, handlers: JobHandlers | null): Promise<ReadDone> {
    if (this.broken) throw this.broken;
    const q: QueuedJob = { job, chunks: Math.max(1, Math.ceil(job.length / SQL_CHUNK)), asked: 0, slots: [], cancelled: false };
    this.queue.push(q);
    this.active.add(q);
    this.wake();
    try {
      return await this.consume(q, handlers);
    } finally {
      this.active.delete(q);
    }
  }

  /** The job's chunks in order, as the connections bring them: verified, summed, handed over. */
  private async consume(q: QueuedJob, handlers: JobHandlers | null): Promise<ReadDone> {
    const { job } = q;
    const crc = job.checksum === 'CRC32C';
    let crcValue = 0;
    const hash = job.checksum && !crc ? createManifestChecksum(job.checksum) : null;
    const failures: ChecksumFailure[] = [];
    const startLsn = job.verify ? BigInt(job.verify.startLsn) : 0n;
    let verifying = job.verify !== null;
    let partialPage = false;
    for (let i = 0; i < q.chunks; i++) {
      const got = await this.slot(q, i).promise;
      // Forget the slot once taken: a resolved promise holds its chunk, and a 1 GiB
      // segment's slots would otherwise hold the whole segment until the job ends.
      q.slots[i] = TAKEN;
      if (this.broken) throw this.broken;
      if (got === null && i === 0) {
        // Gone when first asked for: left out, as the server leaves out a file dropped since it was listed.
        q.cancelled = true;
        for (let k = 1; k < q.asked; k++) await this.slot(q, k).promise.catch(() => null);
        this.release(q.asked);
        return { id: job.id, kind: 'done', gone: true, length: 0, checksumHex: null, crc32c: null, sha256: null, encodedBytes: 0, failures: [], partialPage: false };
      }
      const offset = i * SQL_CHUNK;
      const want = Math.min(SQL_CHUNK, job.length - offset);
      // Shrank since it was listed (or dropped midway): zeros up to the listed size, as the server sends.
      const { pieces, real: read } = fitTo(got ?? [], want);
      let at = 0;
      for (const piece of pieces) {
        const real = Math.min(piece.length, read - at);
        if (verifying && real > 0) {
          if (real % PAGE_SIZE !== 0) {
            partialPage = true;
            verifying = false;
          }
          const base = job.verify!.blockBase + (job.offset + offset + at) / PAGE_SIZE;
          for (let p = 0; p + PAGE_SIZE <= real; p += PAGE_SIZE) await this.checkPage(job, piece, p, base + p / PAGE_SIZE, job.offset + offset + at + p, startLsn, failures);
        }
        if (crc) crcValue = crc32c(piece, crcValue);
        else hash?.update(piece);
        if (handlers && piece.length > 0) await handlers.chunk(piece);
        at += piece.length;
      }
      this.done += want;
      this.release(1);
    }
    const checksumHex = crc ? crc32cHex(crcValue) : hash ? hash.digestHex() : null;
    return { id: job.id, kind: 'done', gone: false, length: job.length, checksumHex, crc32c: crc ? crcValue : null, sha256: null, encodedBytes: 0, failures, partialPage };
  }

  /** The server's rule (basebackup.c): a page that fails is read once more (a concurrent write may have torn it); the second read is what is sent. */
  private async checkPage(job: ReadJob, buf: Buffer, at: number, block: number, position: number, startLsn: bigint, failures: ChecksumFailure[]): Promise<void> {
    const page = buf.subarray(at, at + PAGE_SIZE);
    let r = verifyPage(page, block, startLsn);
    if (typeof r === 'string') return;
    const into = deferred<Buffer[] | null>();
    this.urgent.push({ path: job.source, offset: position, length: PAGE_SIZE, into });
    this.wake();
    const got = await into.promise;
    if (this.broken) throw this.broken;
    const again = got === null ? null : Buffer.concat(got);
    if (again !== null && again.length === PAGE_SIZE) {
      again.copy(buf, at);
      r = verifyPage(page, block, startLsn);
      if (typeof r === 'string') return;
    }
    failures.push({ block, calculated: r.calculated, expected: r.expected });
  }

  private slot(q: QueuedJob, i: number): Deferred<Buffer[] | null> {
    return (q.slots[i] ??= deferred());
  }

  private release(n: number): void {
    this.inWindow -= n;
    this.wake();
  }

  private wake(): void {
    for (const w of this.idle.splice(0)) w();
  }

  /** The next thing for a free connection to read: a page read again first, then the next chunk in job order. */
  private next(): Fetch | null {
    const u = this.urgent.shift();
    if (u) return u;
    while (this.queue.length > 0 && this.inWindow < WINDOW_PER_CONNECTION * this.sessions.length) {
      const q = this.queue[0]!;
      if (q.cancelled || q.asked >= q.chunks) {
        this.queue.shift();
        continue;
      }
      const i = q.asked++;
      this.inWindow++;
      const offset = i * SQL_CHUNK;
      return { path: q.job.source, offset: q.job.offset + offset, length: Math.min(SQL_CHUNK, q.job.length - offset), into: this.slot(q, i) };
    }
    return null;
  }

  private async loop(session: Session): Promise<void> {
    while (!this.broken) {
      const f = this.next();
      if (f === null) {
        await new Promise<void>((r) => this.idle.push(r));
        continue;
      }
      try {
        if (this.rate) await this.rate.take(f.length);
        if (this.broken) return;
        f.into.resolve(await readServerFileChunk(session, f.path, f.offset, f.length));
      } catch (e) {
        const err = readerError(e, f.path);
        f.into.reject(err);
        this.fail(err);
        return;
      }
    }
  }

  private fail(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    this.rejectAll(e);
    this.onFailure(e);
  }

  /** Every chunk not yet read fails with `e`: nothing waits for a connection that will not answer. */
  private rejectAll(e: Error): void {
    for (const q of this.active) for (let i = 0; i < q.chunks; i++) this.slot(q, i).reject(e);
    for (const u of this.urgent.splice(0)) u.into.reject(e);
    this.wake();
  }

  /** The backup is lost (its session ended, a signal): every job fails with `e` now. */
  abort(e: Error): void {
    this.fail(e);
  }

  async stop(): Promise<void> {
    if (!this.broken) this.broken = new PgpitrError('ERR_INTERNAL', 'the backup reader connections were stopped');
    this.rejectAll(this.broken); // wakes the idle connections too
    this.rate?.stop();
    for (const s of this.sessions) s.close();
    await Promise.allSettled(this.loops);
  }
}

const LOST_HINT = 'a backup reader connection ended: the server may have been stopped or restarted, or the connection terminated (pg_terminate_backend); check the server log, then run the backup again';

function readerError(e: unknown, path: string): Error {
  if (isPgpitrError(e) && e.code === 'ERR_CONNECTION_LOST' && e.hint === undefined) return Object.assign(new PgpitrError(e.code, e.message, { hint: LOST_HINT, cause: e }), { path });
  if (isPgpitrError(e)) return Object.assign(e, { path });
  return Object.assign(new PgpitrError('ERR_CONNECTION_LOST', `a backup reader connection failed while reading "${path}": ${(e as Error).message}`, { hint: LOST_HINT, cause: e }), { path });
}

/** `got` cut or padded with zeros to `want` bytes; `real` is how many of them were read. */
function fitTo(got: Buffer[], want: number): { pieces: Buffer[]; real: number } {
  const out: Buffer[] = [];
  let have = 0;
  for (const b of got) {
    if (have >= want) break;
    const v = have + b.length > want ? b.subarray(0, want - have) : b;
    out.push(v);
    have += v.length;
  }
  if (have < want) out.push(Buffer.alloc(want - have));
  return { pieces: out, real: have };
}
