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
