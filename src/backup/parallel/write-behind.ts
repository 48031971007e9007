// A reader thread's writes to a local file, one at a time on the thread pool
// while the thread reads and verifies the next chunk: two buffers, one being
// written, the other read into. Reading, checking pages and writing then
// overlap, as they do in a single stream between the server (reading) and
// pgpitr (writing), instead of adding up on one thread.

import { write } from 'node:fs';
import { WRITE_PIECE } from '../../storage/write-piece.js';

export class WriteBehind {
  private readonly buffers: [Buffer, Buffer];
  private turn = 0;
  private pending: Promise<void> | null = null;

  constructor(
    buffers: [Buffer, Buffer],
    /** Wraps a failed write's error (names the file). */
    private readonly failed: (e: NodeJS.ErrnoException) => Error,
  ) {
    this.buffers = buffers;
  }

  /** The buffer to read the next chunk into: never the one being written. */
  next(): Buffer {
    return this.buffers[this.turn]!;
  }

  /**
   * Writes `bytes` (a view of the buffer next() gave) to `fd` at `position` once the write
   * before it is done, and returns without waiting for it. A failed write fails the next call
   * (or drain()).
   */
  async write(fd: number, bytes: Buffer, position: number): Promise<void> {
    await this.drain();
    const p = writeAll(fd, bytes, position).catch((e: NodeJS.ErrnoException) => Promise.reject(this.failed(e)));
    p.catch(() => {}); // reported by the next write or drain
    this.pending = p;
    this.turn ^= 1;
  }

  /** Waits for the write in flight; throws its failure. */
  async drain(): Promise<void> {
    const p = this.pending;
    this.pending = null;
    if (p) await p;
  }
}

function writeAll(fd: number, bytes: Buffer, position: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = 0;
    const step = () => {
      write(fd, bytes, done, Math.min(WRITE_PIECE, bytes.length - done), position + done, (e, n) => {
        if (e) return reject(e);
        done += n;
        if (done < bytes.length) step();
        else resolve();
      });
    };
    step();
  });
}
