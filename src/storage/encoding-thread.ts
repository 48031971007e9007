// Compressing a file as it is written, on a thread of its own (the other half is
// encoding-writer-worker.ts): the main thread only gathers the bytes into 1 MiB
// blocks and hands each over (transferred, not copied); the thread compresses
// it with the encoders of storage/compress/sync-encoder.ts (the same frames as
// the streaming compressors), writes it and gives the block back to be filled
// again. One thread serves one file at a time, file after file.
//
// Why: a single-stream base backup with -Z client-lz4 spent half of its main
// thread in liblz4 while that thread also had to read the socket; with the
// compression beside it, the two overlap (bench/RESULTS.md). Nothing of a chunk
// is kept once write() returned, so the caller may reuse that memory (a base
// backup's lent socket reads, BackupSink.lendTarData).

import { Worker } from 'node:worker_threads';
import { Writable } from 'node:stream';
import type { CompressionAlgorithm } from './compress/common.js';
import { PgpitrError, storageError } from '../common/errors.js';
import { endThread } from '../common/thread-exit.js';

const BLOCK = 1024 * 1024;
/** Blocks in flight or being filled: the thread compresses one while the next ones fill. */
const BLOCKS = 4;

/** What the thread answers (encoding-writer-worker.ts). */
export type EncodingReply =
  | { kind: 'back'; block: ArrayBuffer }
  | { kind: 'closed'; bytes: number }
  | { kind: 'failed'; action: string; path: string; message: string; code?: string };

/** A thread that compresses and writes files, one at a time. */
export class EncodingThread {
  private readonly worker: Worker;
  private listener: ((m: EncodingReply) => void) | null = null;
  private broken: Error | null = null;

  /** Starts the thread now (its start-up then overlaps whatever comes before the first file). */
  constructor(
    readonly compression: CompressionAlgorithm,
    readonly level: number | undefined,
  ) {
    this.worker = new Worker(new URL('./encoding-writer-worker.js', import.meta.url), { workerData: { compression, level } });
    this.worker.unref();
    this.worker.on('message', (m: EncodingReply) => this.listener?.(m));
    const fail = (e: Error) => {
      this.broken ??= e;
      this.listener?.({ kind: 'failed', action: 'compress', path: '', message: e.message });
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the compression thread exited (code ${code})`)));
  }

  /** A Writable for a new file at `path` (created exclusively), compressed by this thread. */
  file(path: string, sync: boolean, mode: number): EncodingFileWritable {
    if (this.listener) throw new PgpitrError('ERR_INTERNAL', 'the compression thread already writes a file');
    if (this.broken) throw this.broken;
    return new EncodingFileWritable(this, path, sync, mode);
  }

  /** @internal: the file being written takes the thread's answers. */
  attach(listener: ((m: EncodingReply) => void) | null): void {
    this.listener = listener;
  }

  /** @internal */
  post(message: unknown, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  async stop(): Promise<void> {
    this.listener = null;
    await endThread(this.worker);
  }
}

/** One compressed file written by an EncodingThread. */
export class EncodingFileWritable extends Writable {
  private readonly free: ArrayBuffer[] = [];
  private block: Buffer | null = null;
  private filled = 0;
  private blocks = 0;
  private waitingForBlock: (() => void) | null = null;
  private closing: ((e?: Error | null) => void) | null = null;
  private failure: Error | null = null;
  bytesWritten = 0;

  constructor(
    private readonly thread: EncodingThread,
    readonly path: string,
    sync: boolean,
    mode: number,
  ) {
    super({ highWaterMark: 1 });
    thread.attach((m) => this.onReply(m));
    thread.post({ kind: 'open', path, sync, mode });
  }

  private onReply(m: EncodingReply): void {
    if (m.kind === 'back') {
      this.free.push(m.block);
      const w = this.waitingForBlock;
      this.waitingForBlock = null;
      w?.();
    } else if (m.kind === 'closed') {
      this.bytesWritten = m.bytes;
      this.thread.attach(null);
      const cb = this.closing;
      this.closing = null;
      cb?.();
    } else if (m.kind === 'failed') {
      const e = m.path ? storageError(m.action, m.path, Object.assign(new Error(m.message), m.code ? { code: m.code } : {})) : new PgpitrError('ERR_INTERNAL', `compression failed: ${m.message}`);
      this.failure ??= e;
      this.thread.attach(null);
      const w = this.waitingForBlock;
      this.waitingForBlock = null;
      w?.();
      const cb = this.closing;
      this.closing = null;
      if (cb) cb(e);
      else this.destroy(e);
    }
  }

  /**
   * Copies `chunk` into blocks at once (nothing of it is kept: the caller may reuse its memory),
   * handing each full one to the thread; the callback waits while all blocks are out. With a
   * high-water mark of 1, write() then returns false and the caller waits for 'drain' before the
   * next chunk, so that no chunk ever waits in the stream's own buffer.
   */
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.failure) {
      cb(this.failure);
      return;
    }
    for (let off = 0; off < chunk.length; ) {
      this.block ??= this.nextBlock();
      const n = chunk.copy(this.block, this.filled, off);
      this.filled += n;
      off += n;
      if (this.filled === BLOCK) this.handOver();
    }
    if (this.free.length > 0 || this.blocks < BLOCKS) {
      cb();
      return;
    }
    this.waitingForBlock = () => cb(this.failure);
  }

  /** A block to fill: one that came back, or a new one (beyond BLOCKS only while a callback waits). */
  private nextBlock(): Buffer {
    const ab = this.free.pop();
    if (ab) return Buffer.from(ab);
    this.blocks++;
    return Buffer.from(new ArrayBuffer(BLOCK));
  }

  private handOver(): void {
    const b = this.block!;
    this.block = null;
    const length = this.filled;
    this.filled = 0;
    this.thread.post({ kind: 'block', block: b.buffer, length }, [b.buffer as ArrayBuffer]);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.failure) {
      cb(this.failure);
      return;
    }
    if (this.filled > 0) this.handOver();
    this.closing = cb;
    this.thread.post({ kind: 'close' });
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.thread.attach(null);
    cb(err);
  }
}
