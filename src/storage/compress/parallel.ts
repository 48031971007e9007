// Block-parallel compression: cuts the input into fixed-size blocks, compresses
// up to N of them at once with an async function (zlib's thread pool or worker
// threads) and emits the results in order as independent gzip members / zstd
// or lz4 frames, which every decoder reads as one stream.

import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

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
