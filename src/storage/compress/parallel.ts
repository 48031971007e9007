// Block-parallel compression: cuts the input into fixed-size blocks, compresses
// up to N of them at once with an async function (zlib's thread pool or worker
// threads) and emits the results in order as independent gzip members / zstd
// or lz4 frames, which every decoder reads as one stream.

import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { CompressionError } from './common.js';

/**
 * Compresses one block, taking ownership of its memory. Resolves to the compressed
 * bytes and what may be filled again: `reusable` undefined means the block itself
 * (the compressor is done with it), null nothing, else a buffer handed back (a
 * worker thread returns the memory that was transferred to it).
 */
export type BlockCompressor = (block: Buffer) => Promise<BlockOutput>;
export interface BlockOutput {
  out: Buffer;
  reusable?: Buffer | null;
}

export class ParallelBlockTransform extends Transform {
  private readonly compress: BlockCompressor;
  private readonly blockSize: number;
  private readonly maxInFlight: number;
  private readonly onClose: (() => void) | undefined;
  private block: Buffer | null = null;
  private filled = 0;
  private blocks = 0;
  private readonly free: Buffer[] = [];
  private readonly inFlight: Promise<BlockOutput>[] = [];
  private readWaiter: (() => void) | null = null;

  constructor(compress: BlockCompressor, blockSize: number, maxInFlight: number, onClose?: () => void) {
    super({ readableHighWaterMark: blockSize });
    this.compress = compress;
    this.blockSize = blockSize;
    this.maxInFlight = Math.max(1, maxInFlight);
    this.onClose = onClose;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.accept(chunk).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.finish().then(() => callback(), callback);
  }

  override _read(size: number): void {
    const waiter = this.readWaiter;
    this.readWaiter = null;
    waiter?.();
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const waiter = this.readWaiter;
    this.readWaiter = null;
    waiter?.();
    this.onClose?.();
    callback(error);
  }

  private async accept(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      // Copy into a block buffer of our own: chunks are views into arbitrary memory,
      // while a whole block can then be handed to another thread without a copy.
      this.block ??= this.free.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
      const n = chunk.copy(this.block, this.filled, offset);
      this.filled += n;
      offset += n;
      if (this.filled === this.blockSize) await this.dispatch();
    }
  }

  private async finish(): Promise<void> {
    // An empty input still yields one (empty) member/frame, so that it decodes as empty.
    if (this.filled > 0 || this.blocks === 0) await this.dispatch();
    while (this.inFlight.length > 0) await this.emitOldest();
    this.onClose?.();
  }

  private async dispatch(): Promise<void> {
    const full = this.block ?? Buffer.allocUnsafeSlow(0);
    const block = full.subarray(0, this.filled);
    this.block = null;
    this.filled = 0;
    this.blocks++;
    const p = this.compress(block).then((r) => ({ out: r.out, reusable: r.reusable === undefined ? full : r.reusable }));
    p.catch(() => {}); // observed later, in order; avoid an unhandled-rejection report meanwhile
    this.inFlight.push(p);
    while (this.inFlight.length >= this.maxInFlight) await this.emitOldest();
  }

  private async emitOldest(): Promise<void> {
    const { out, reusable } = await this.inFlight.shift()!;
    if (reusable && reusable.length === this.blockSize && this.free.length <= this.maxInFlight) this.free.push(reusable);
    if (this.destroyed) throw new Error('stream destroyed');
    if (!this.push(out)) {
      await new Promise<void>((resolve) => {
        this.readWaiter = resolve;
      });
    }
  }
}

/** What block-worker.ts compresses with. */
export interface BlockWorkerConfig {
  algorithm: 'zstd';
  level: number;
}

/** A block for a worker: the first `length` bytes of `buffer` (transferred). */
export interface BlockJob {
  id: number;
  buffer: ArrayBuffer;
  length: number;
}

/** The compressed frame, and the job's buffer handed back for reuse (both transferred). */
export type BlockResult = { id: number; data: Uint8Array; buffer: ArrayBuffer } | { id: number; error: string };

interface Pending {
  resolve: (r: BlockOutput) => void;
  reject: (e: Error) => void;
}

/** A fixed set of worker threads, each running its own codec; jobs go to the least busy one. */
export class BlockWorkerPool {
  private readonly workers: { worker: Worker; busy: number }[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | null = null;
  private closed = false;

  constructor(
    private readonly config: BlockWorkerConfig,
    size: number,
  ) {
    for (let i = 0; i < size; i++) {
      const workerData: BlockWorkerConfig = { ...config };
      const worker = new Worker(new URL('./block-worker.js', import.meta.url), { workerData });
      const slot = { worker, busy: 0 };
      worker.on('message', (r: BlockResult) => {
        slot.busy--;
        const p = this.pending.get(r.id);
        if (!p) return;
        this.pending.delete(r.id);
        if ('error' in r) {
          p.reject(new CompressionError('ERR_COMPRESSION_FAILED', this.config.algorithm, r.error));
        } else {
          p.resolve({
            out: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength),
            reusable: Buffer.from(r.buffer),
          });
        }
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`compression worker exited with code ${code}`));
      });
      this.workers.push(slot);
    }
  }

  /** Sends the block to a worker. Its memory is transferred when the block owns all of it, else copied. */
  compress(block: Buffer): Promise<BlockOutput> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('compression worker pool is closed'));
    let slot = this.workers[0]!;
    for (const w of this.workers) if (w.busy < slot.busy) slot = w;
    const id = this.nextId++;
    slot.busy++;
    const whole = block.byteOffset === 0 && block.buffer.byteLength >= block.length && !isPooled(block);
    const buffer = whole ? (block.buffer as ArrayBuffer) : new Uint8Array(block).buffer;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const job: BlockJob = { id, buffer, length: block.length };
      slot.worker.postMessage(job, [buffer]);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const { worker } of this.workers) void worker.terminate();
    this.fail(new Error('compression worker pool closed'));
  }

  private fail(e: Error): void {
    const err =
      e instanceof CompressionError ? e : new CompressionError('ERR_COMPRESSION_FAILED', this.config.algorithm, e.message, e);
    if (!this.closed) this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** Buffers under 4 kB may share Node's allocation pool with unrelated buffers; never transfer those. */
function isPooled(b: Buffer): boolean {
  return b.buffer.byteLength === Buffer.poolSize && b.length < Buffer.poolSize;
}

/** Block-parallel zstd compressor on `workers` threads. */
export function createPooledCompressor(config: BlockWorkerConfig, workers: number, blockSize: number): Transform {
  const pool = new BlockWorkerPool(config, workers);
  return new ParallelBlockTransform((b) => pool.compress(b), blockSize, workers * 2, () => pool.close());
}
