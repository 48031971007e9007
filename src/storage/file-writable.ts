// A Writable that appends to one file with synchronous writes: for a CLI that
// copies one stream, a blocking write is the cheapest path (no thread-pool hop
// per chunk) and while it blocks the socket is not read, so memory stays flat.
// Small chunks are gathered (up to 256 KiB) and written with one writev, as
// stdio buffering does for pg_basebackup. The file is created exclusively and
// fsynced at the end unless told not to; then the kernel is asked to start
// writing it every few megabytes (write-behind.ts), so that the disk works while
// the stream comes and the fsync finds little left. A writer told to keep no chunk copies
// small ones into its own gather buffer instead (the caller reuses their memory
// once write() returned).

import { Writable } from 'node:stream';
import { openSync, writeSync, writevSync, fsyncSync, closeSync } from 'node:fs';
import { storageError } from '../common/errors.js';
import { WRITE_PIECE } from './write-piece.js';
import { WriteBehind } from './posix/write-behind.js';

const GATHER = 256 * 1024;

export class FileWritable extends Writable {
  private fd: number | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** With keepNoChunk: where small chunks are copied (pending then holds views of it). */
  private gather: Buffer | null = null;
  bytesWritten = 0;
  /** Where the next write goes in the file (writes are positioned: see continueAt). */
  private position = 0;
  /** With sync: the writeback of what this writer writes (write-behind.ts). */
  private behind: WriteBehind | null = null;

  constructor(
    readonly path: string,
    private readonly sync: boolean,
    mode = 0o600,
    private readonly keepNoChunk = false,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    try {
      this.fd = openSync(path, 'wx', mode);
      this.behind = new WriteBehind(this.fd, 0, sync);
    } catch (e) {
      throw storageError('create', path, e);
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    try {
      this.add(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    try {
      for (const { chunk } of chunks) this.add(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  protected add(chunk: Buffer): void {
    if (chunk.length >= GATHER) {
      this.flush();
      writeAll(this.fd!, chunk, this.path, this.position);
      this.position += chunk.length;
      this.behind!.wrote(chunk.length);
    } else if (this.keepNoChunk) {
      if (this.pendingBytes + chunk.length > GATHER) this.flush();
      this.gather ??= Buffer.allocUnsafeSlow(GATHER);
      chunk.copy(this.gather, this.pendingBytes);
      this.pendingBytes += chunk.length;
      this.pending = [this.gather.subarray(0, this.pendingBytes)];
      if (this.pendingBytes >= GATHER) this.flush();
    } else {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingBytes >= GATHER) this.flush();
    }
    this.bytesWritten += chunk.length;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const parts = this.pending;
    const total = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    let written: number;
    try {
      written = writevSync(this.fd!, parts, this.position);
    } catch (e) {
      throw storageError('write to', this.path, e);
    }
    if (written < total) writeAll(this.fd!, Buffer.concat(parts).subarray(written), this.path, this.position + written);
    this.position += total;
    this.behind!.wrote(total);
  }

  /** Writes out what it gathered; the position in the file the next byte goes to. */
  flushed(): number {
    this.flush();
    return this.position;
  }

  /** Others wrote the file up to `position` (see BackupSink.directTar): the next byte goes there. */
  continueAt(position: number): void {
    this.flush();
    this.bytesWritten += position - this.position;
    this.position = position;
    // What others wrote, they asked the writeback of themselves.
    this.behind!.finish();
    this.behind = new WriteBehind(this.fd!, position, this.sync);
  }

  override _final(cb: (e?: Error | null) => void): void {
    try {
      this.flush();
    } catch (e) {
      cb(e as Error);
      return;
    }
    try {
      if (this.sync) fsyncSync(this.fd!);
      closeSync(this.fd!);
      this.fd = null;
      cb();
    } catch (e) {
      cb(storageError('fsync', this.path, e));
    }
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        /* ignore */
      }
      this.fd = null;
    }
    cb(err);
  }
}

export function writeAll(fd: number, buf: Buffer, path: string, position?: number): void {
  let off = 0;
  try {
    while (off < buf.length) {
      off += writeSync(fd, buf, off, Math.min(WRITE_PIECE, buf.length - off), position === undefined ? null : position + off);
    }
  } catch (e) {
    throw storageError('write to', path, e);
  }
}
