// Block-parallel compression: cuts the input into fixed-size blocks, compresses
// up to N of them at once with an async function (on libuv's thread pool) and
// emits the results in order as independent gzip members / zstd or lz4 frames,
// which every decoder reads as one stream.

import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

/**
 * Compresses one block; the block's memory is filled again once the promise settles.
 */
export type BlockCompressor = (block: Buffer) => Promise<BlockOutput>;
export interface BlockOutput {
  /** The compressed bytes, as one buffer or as consecutive pieces. */
  out: Buffer | Buffer[];
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
  private readonly inFlight: Promise<{ out: BlockOutput['out']; reusable: Buffer }>[] = [];
  private readWaiter: (() => void) | null = null;

  constructor(compress: BlockCompressor, blockSize: number, maxInFlight: number, onClose?: () => void) {
    // The writable side takes a whole block before it asks writers to wait: with
    // Node's default 16 KiB, every 32 KiB chunk from the server would make write()
    // return false and cost a 'drain' round trip although it was taken at once.
    super({ readableHighWaterMark: blockSize, writableHighWaterMark: blockSize });
    this.compress = compress;
    this.blockSize = blockSize;
    this.maxInFlight = Math.max(1, maxInFlight);
    this.onClose = onClose;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Most chunks only fill part of a block: those are taken synchronously, without
    // a promise and a microtask per chunk.
    let pending: void | Promise<void>;
    try {
      pending = this.accept(chunk, 0);
    } catch (e) {
      callback(e as Error);
      return;
    }
    if (pending) pending.then(() => callback(), callback);
    else callback();
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

  /** Copies chunk[offset..] into blocks; a promise only when a full block has to wait its turn. */
  private accept(chunk: Buffer, offset: number): void | Promise<void> {
    while (offset < chunk.length) {
      // Copy into a block buffer of our own: chunks are views into arbitrary memory,
      // while a whole block can then be handed to another thread without a copy.
      this.block ??= this.free.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
      const n = chunk.copy(this.block, this.filled, offset);
      this.filled += n;
      offset += n;
      if (this.filled === this.blockSize) {
        const from = offset;
        return this.dispatch().then(() => this.accept(chunk, from));
      }
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
    const p = this.compress(block).then((r) => ({ out: r.out, reusable: full }));
    p.catch(() => {}); // observed later, in order; avoid an unhandled-rejection report meanwhile
    this.inFlight.push(p);
    while (this.inFlight.length >= this.maxInFlight) await this.emitOldest();
  }

  private async emitOldest(): Promise<void> {
    const { out, reusable } = await this.inFlight.shift()!;
    if (reusable.length === this.blockSize && this.free.length <= this.maxInFlight) this.free.push(reusable);
    if (this.destroyed) throw new Error('stream destroyed');
    let more = true;
    for (const piece of Array.isArray(out) ? out : [out]) more = this.push(piece);
    if (!more) {
      await new Promise<void>((resolve) => {
        this.readWaiter = resolve;
      });
    }
  }
}
