// A Writable that appends to one file with synchronous writes: for a CLI that
// copies one stream, a blocking write is the cheapest path (no thread-pool hop
// per chunk) and while it blocks the socket is not read, so memory stays flat.
// The file is created exclusively, fsynced at the end unless told not to.

import { Writable } from 'node:stream';
import { openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import { storageError } from '../common/errors.js';

export class FileWritable extends Writable {
  private fd: number | null = null;
  bytesWritten = 0;

  constructor(
    readonly path: string,
    private readonly sync: boolean,
    mode = 0o600,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    try {
      this.fd = openSync(path, 'wx', mode);
    } catch (e) {
      throw storageError('create', path, e);
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    try {
      writeAll(this.fd!, chunk, this.path);
      this.bytesWritten += chunk.length;
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    try {
      for (const { chunk } of chunks) {
        writeAll(this.fd!, chunk, this.path);
        this.bytesWritten += chunk.length;
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
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
      off += writeSync(fd, buf, off, buf.length - off, position === undefined ? null : position + off);
    }
  } catch (e) {
    throw storageError('write to', path, e);
  }
}
