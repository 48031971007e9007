// A file compressed as it is written, on the calling thread: chunks are copied
// into a 128 KiB block (nothing of a chunk is kept once write() returned, so a
// base backup may lend its socket reads: BackupSink.lendTarData), each full
// block is encoded at once by a synchronous encoder (storage/compress/
// sync-encoder.ts: the same frames as the streaming compressors) and the
// frames go to the file through FileWritable's gathering, positioned writes,
// write-behind and final fsync.
//
// Why small blocks on the main thread (bench/RESULTS.md, "lz4 single stream"):
// a single-stream base backup with -Z client-lz4 consumes faster than
// PostgreSQL's walsender produces, so it drains the Unix socket and sleeps
// thousands of times. Compressing 1 MiB at a time (here or on a thread of its
// own, as until this file) made the reader's work come in bursts during which
// the socket's ~200 KiB filled and the walsender stopped too; 128 KiB blocks
// keep both sides moving: 1.00x pg_basebackup against 1.21x with the thread.

import { FileWritable } from './file-writable.js';
import { storageError } from '../common/errors.js';
import type { SyncEncoder } from './compress/sync-encoder.js';

/** Input encoded at once: small enough that the reader never stops the server for long. */
export const ENCODE_BLOCK = 128 * 1024;

export class EncodingFileWritable extends FileWritable {
  private readonly block = Buffer.allocUnsafeSlow(ENCODE_BLOCK);
  private filled = 0;
  private readonly out: Buffer;

  /** Creates `path` exclusively (an existing file is an error naming it); fsyncs it at the end when `sync`. */
  constructor(
    path: string,
    sync: boolean,
    mode: number,
    private readonly encoder: SyncEncoder,
  ) {
    // Encoded frames are copied into the writer's gathering (keepNoChunk): `out` is encoded into again.
    super(path, sync, mode, true);
    this.out = Buffer.allocUnsafeSlow(encoder.bound(ENCODE_BLOCK));
  }

  protected override add(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; ) {
      const n = chunk.copy(this.block, this.filled, off);
      this.filled += n;
      off += n;
      if (this.filled === ENCODE_BLOCK) this.encodeBlock();
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    try {
      // Nothing given, nothing written: no frame for an empty file (a tar file is never empty).
      if (this.filled > 0) this.encodeBlock();
    } catch (e) {
      cb(e as Error);
      return;
    }
    super._final(cb);
  }

  private encodeBlock(): void {
    let n: number;
    try {
      n = this.encoder.encode(this.block.subarray(0, this.filled), this.out, 0);
    } catch (e) {
      throw storageError('compress', this.path, e);
    }
    this.filled = 0;
    super.add(this.out.subarray(0, n));
  }
}
