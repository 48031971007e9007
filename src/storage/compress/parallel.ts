// Block-parallel compression: cuts the input into fixed-size blocks, compresses
// up to N of them at once with an async function (zlib's thread pool or worker
// threads) and emits the results in order as independent gzip members / zstd
// or lz4 frames, which every decoder reads as one stream.

import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { CompressionError } from './common.js';

export type BlockCompressor = (block: Buffer) => Promise<Buffer>;

export class ParallelBlockTransform extends Transform {
  private readonly compress: BlockCompressor;
  private readonly blockSize: number;
  private readonly maxInFlight: number;
  private readonly onClose: (() => void) | undefined;
  private parts: Buffer[] = [];
  private partsLength = 0;
  private blocks = 0;
  private readonly inFlight: Promise<Buffer>[] = [];
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
      const take = Math.min(this.blockSize - this.partsLength, chunk.length - offset);
      this.parts.push(chunk.subarray(offset, offset + take));
      this.partsLength += take;
      offset += take;
      if (this.partsLength === this.blockSize) await this.dispatch();
    }
  }

  private async finish(): Promise<void> {
    // An empty input still yields one (empty) member/frame, so that it decodes as empty.
    if (this.partsLength > 0 || this.blocks === 0) await this.dispatch();
    while (this.inFlight.length > 0) await this.emitOldest();
    this.onClose?.();
  }

  private async dispatch(): Promise<void> {
    const block = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLength);
    this.parts = [];
    this.partsLength = 0;
    this.blocks++;
    const p = this.compress(block);
    p.catch(() => {}); // observed later, in order; avoid an unhandled-rejection report meanwhile
    this.inFlight.push(p);
    while (this.inFlight.length >= this.maxInFlight) await this.emitOldest();
  }

  private async emitOldest(): Promise<void> {
    const out = await this.inFlight.shift()!;
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
  algorithm: 'lz4' | 'zstd';
  level: number;
  long: boolean;
}

export interface BlockJob {
  id: number;
  data: Uint8Array;
}

export type BlockResult = { id: number; data: Uint8Array } | { id: number; error: string };

interface Pending {
  resolve: (b: Buffer) => void;
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
      const worker = new Worker(new URL('./block-worker.js', import.meta.url), { workerData: config });
      const slot = { worker, busy: 0 };
      worker.on('message', (r: BlockResult) => {
        slot.busy--;
        const p = this.pending.get(r.id);
        if (!p) return;
        this.pending.delete(r.id);
        if ('error' in r) p.reject(new CompressionError('ERR_COMPRESSION_FAILED', this.config.algorithm, r.error));
        else p.resolve(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength));
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`compression worker exited with code ${code}`));
      });
      this.workers.push(slot);
    }
  }

  compress(block: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('compression worker pool is closed'));
    let slot = this.workers[0]!;
    for (const w of this.workers) if (w.busy < slot.busy) slot = w;
    const id = this.nextId++;
    slot.busy++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Structured clone copies the block: it may share memory with other buffers.
      const job: BlockJob = { id, data: block };
      slot.worker.postMessage(job);
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

/** Block-parallel lz4 / zstd compressor on `workers` threads. */
export function createPooledCompressor(config: BlockWorkerConfig, workers: number, blockSize: number): Transform {
  const pool = new BlockWorkerPool(config, workers);
  return new ParallelBlockTransform((b) => pool.compress(b), blockSize, workers * 2, () => pool.close());
}
