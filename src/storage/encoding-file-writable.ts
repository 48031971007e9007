// A FileWritable that compresses on the way, synchronously, with the encoders
// of storage/compress/sync-encoder.ts (the same frames as the streaming
// compressors): input is gathered into 1 MiB blocks, each encoded and written
// as it fills. Nothing of a chunk is kept once write() returned, so the caller
// may read into that memory again (a base backup's lent socket reads,
// BackupSink.lendTarData). For encoders that would run on the main thread
// anyway (liblz4's fast levels): a stream stage there cost a Transform, a block
// queue and a fresh 64 KiB buffer for every socket read on top.

import { FileWritable } from './file-writable.js';
import type { SyncEncoder } from './compress/sync-encoder.js';

const BLOCK = 1024 * 1024;

export class EncodingFileWritable extends FileWritable {
  private readonly block = Buffer.allocUnsafeSlow(BLOCK);
  private filled = 0;
  private readonly out: Buffer;

  constructor(path: string, sync: boolean, mode: number, private readonly encoder: SyncEncoder) {
    super(path, sync, mode, true);
    this.out = Buffer.allocUnsafeSlow(encoder.bound(BLOCK));
  }

  protected override add(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; ) {
      const n = chunk.copy(this.block, this.filled, off);
      this.filled += n;
      off += n;
      if (this.filled === BLOCK) this.encodeBlock();
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    try {
      if (this.filled > 0) this.encodeBlock();
    } catch (e) {
      cb(e as Error);
      return;
    }
    super._final(cb);
  }

  private encodeBlock(): void {
    const n = this.encoder.encode(this.block.subarray(0, this.filled), this.out, 0);
    this.filled = 0;
    super.add(this.out.subarray(0, n)); // copied or written at once: `out` is filled again next
  }
}
