// How one segment's bytes reach its file. Uncompressed (pg_receivewal's
// default): a file pre-sized to the segment, written at each byte's offset.
// Compressed (-Z gzip|lz4, pg_receivewal 15+): one gzip stream, or a run of lz4
// frames, appended as WAL arrives; a sync makes everything received so far
// decodable and durable (gzip: a sync flush; lz4: the pending bytes as a
// frame), and finish() ends the stream. `gzip -dc` / `lz4 -dc` of a finished
// file give exactly the segment's bytes. A compressed .partial an earlier run
// left is taken up without ever holding less than it did (resumed-partial.ts).

import { openSync, writeSync, fsync, closeSync, fstatSync, ftruncateSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { storageError, PgpitrError } from '../common/errors.js';
import { compressBuffer } from '../storage/compress/buffer.js';
import type { ReceivedCompression } from './received-file-names.js';
import { leftByEarlierRun, resumeTempPath, ResumedWriter } from './resumed-partial.js';
import type { ResumeOptions } from './resumed-partial.js';
import { fsyncPath } from '../storage/durable.js';

export interface SegmentWriter {
  /** Writes `data` at `offset` in the segment; compressed writers need offsets in order. May wait (backpressure). */
  write(data: Buffer, offset: number): void | Promise<void>;
  /** What was written before the call is decodable and on disk when this settles. */
  sync(): Promise<void>;
  /**
   * No more bytes for this file: end it (compressed: the stream, so that a
   * .partial one decompresses cleanly too, as pg_receivewal's), sync it if
   * `sync`, close it.
   */
  finish(sync: boolean): Promise<void>;
}

export interface WriterCompression {
  algorithm: ReceivedCompression;
  level?: number | undefined;
}

export function openSegmentWriter(path: string, segmentSize: number, offset: number, compression: WriterCompression | null, resume?: ResumeOptions): SegmentWriter {
  if (compression && offset !== 0) {
    throw new PgpitrError('ERR_INTERNAL', `cannot resume the compressed segment ${path} at offset ${offset}`);
  }
  if (compression && offset === 0 && leftByEarlierRun(path)) {
    const temp = resumeTempPath(path);
    return new ResumedWriter(compressedWriter(openOrThrow(temp), path, compression), path, temp, compression.algorithm, segmentSize, resume ?? { sync: true, syncDirectory: fsyncPath });
  }
  let fd: number;
  try {
    // A whole-size .partial left by an earlier run is written over in place, as pg_receivewal
    // does: truncated first, what it held would be gone until the server sent it again, and
    // the server may recycle that WAL meanwhile. Its bytes are the ones that will come again.
    fd = !compression && offset === 0 ? openWholeOrNew(path, segmentSize) : openSync(path, offset === 0 ? 'w' : 'r+', 0o600);
  } catch (e) {
    throw storageError('open', path, e);
  }
  if (!compression) return new PlainWriter(fd, path);
  return compressedWriter(fd, path, compression);
}

function compressedWriter(fd: number, path: string, compression: WriterCompression): SegmentWriter {
  return compression.algorithm === 'gzip' ? new GzipWriter(fd, path, compression.level) : new Lz4Writer(fd, path, compression.level);
}

function openOrThrow(path: string): number {
  try {
    return openSync(path, 'w', 0o600);
  } catch (e) {
    throw storageError('open', path, e);
  }
}

/** The existing file when it has the segment's size, else a new one of that size (zeros). */
function openWholeOrNew(path: string, segmentSize: number): number {
  try {
    const fd = openSync(path, 'r+');
    if (fstatSync(fd).size === segmentSize) return fd;
    closeSync(fd);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const fd = openSync(path, 'w', 0o600);
  ftruncateSync(fd, segmentSize);
  return fd;
}

/** fsync on the thread pool. */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
}

async function syncFile(fd: number, path: string): Promise<void> {
  try {
    await fsyncFd(fd);
  } catch (e) {
    throw storageError('fsync', path, e);
  }
}

class PlainWriter implements SegmentWriter {
  constructor(private readonly fd: number, private readonly path: string) {}

  write(data: Buffer, offset: number): void {
    let done = 0;
    try {
      while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, offset + done);
    } catch (e) {
      throw storageError('write WAL to', this.path, e);
    }
  }

  sync(): Promise<void> {
    return syncFile(this.fd, this.path);
  }

  async finish(sync: boolean): Promise<void> {
    try {
      if (sync) await this.sync();
    } finally {
      closeSync(this.fd);
    }
  }
}

/** Appends compressed output; remembers the first failure. */
abstract class AppendingWriter implements SegmentWriter {
  protected failure: Error | null = null;
  private closed = false;

  constructor(protected readonly fd: number, protected readonly path: string) {}

  abstract write(data: Buffer, offset: number): void | Promise<void>;
  /** Everything written so far is in the file (decodable). */
  protected abstract drainOutput(): Promise<void>;
  /** Everything written so far is in the file and the stream is ended. */
  protected abstract endOutput(): Promise<void>;

  protected append(out: Buffer): void {
    if (this.failure || this.closed) return;
    let done = 0;
    try {
      while (done < out.length) done += writeSync(this.fd, out, done, out.length - done);
    } catch (e) {
      this.failure = storageError('write WAL to', this.path, e);
    }
  }

  protected throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  async sync(): Promise<void> {
    await this.drainOutput();
    this.throwIfFailed();
    await syncFile(this.fd, this.path);
  }

  async finish(sync: boolean): Promise<void> {
    try {
      await this.endOutput();
      this.throwIfFailed();
      if (sync) await syncFile(this.fd, this.path);
    } finally {
      this.closeFd();
    }
  }

  private closeFd(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** One gzip member for the whole segment, as pg_receivewal writes it (its ISIZE is the segment's size). */
class GzipWriter extends AppendingWriter {
  private readonly gz: zlib.Gzip;
  private readonly ended: Promise<void>;

  constructor(fd: number, path: string, level: number | undefined) {
    super(fd, path);
    this.gz = zlib.createGzip({ level: level ?? zlib.constants.Z_DEFAULT_COMPRESSION });
    this.gz.on('data', (out: Buffer) => this.append(out));
    this.ended = new Promise((resolve) => {
      this.gz.on('end', resolve);
      this.gz.on('error', (e) => {
        this.failure ??= storageError('compress WAL into', this.path, e);
        resolve();
      });
    });
  }

  write(data: Buffer): void | Promise<void> {
    this.throwIfFailed();
    // The stream keeps the buffer until it is compressed; the caller may reuse its own.
    if (this.gz.write(Buffer.from(data))) return;
    return new Promise((resolve) => {
      this.gz.once('drain', resolve);
      void this.ended.then(resolve); // a failed stream never drains
    });
  }

  protected drainOutput(): Promise<void> {
    if (this.failure) return Promise.resolve();
    // Output is appended (on 'data') before the flush's callback runs.
    return new Promise((resolve) => this.gz.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
  }

  protected endOutput(): Promise<void> {
    this.gz.end();
    return this.ended;
  }
}

const LZ4_FRAME_INPUT = 1 << 20;

/** lz4 frames of up to 1 MiB of WAL each, and one more at each sync (concatenated frames are one lz4 stream). */
class Lz4Writer extends AppendingWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(fd: number, path: string, private readonly level: number | undefined) {
    super(fd, path);
  }

  write(data: Buffer): void | Promise<void> {
    this.throwIfFailed();
    this.pending.push(Buffer.from(data));
    this.pendingBytes += data.length;
    if (this.pendingBytes < LZ4_FRAME_INPUT) return;
    const previous = this.chain;
    void this.frame();
    return previous; // one frame may be compressed while more WAL arrives, not more
  }

  /** Compresses what is pending as one frame and appends it, in order. */
  private frame(): Promise<void> {
    if (this.pendingBytes > 0) {
      const input = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
      this.chain = this.chain.then(async () => {
        if (this.failure) return;
        try {
          this.append(await compressBuffer('lz4', input, this.level));
        } catch (e) {
          this.failure ??= storageError('compress WAL into', this.path, e);
        }
      });
    }
    return this.chain;
  }

  protected drainOutput(): Promise<void> {
    return this.frame();
  }

  protected endOutput(): Promise<void> {
    return this.frame();
  }
}
