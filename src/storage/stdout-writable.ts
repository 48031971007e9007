// A Writable that forwards to the process's standard output with backpressure
// and never closes it (tar to stdout, `-D -`). Standard output failing (its
// reader closed the pipe: EPIPE; the file or device is full: ENOSPC) is an
// error of this stream, with a hint, never an 'error' event on process.stdout
// that nobody handles (which would end the process with a stack trace).
// It finishes only once every byte has been handed to the operating system.

import { Writable } from 'node:stream';
import type { PgpitrError } from '../common/errors.js';
import { stdoutError } from './stdout-error.js';

export class StdoutWritable extends Writable {
  private failure: PgpitrError | null = null;
  private pending: ((e?: Error | null) => void) | null = null;
  private readonly onOutError = (e: Error) => this.fail(e);
  private readonly onDrain = () => this.settle(null);

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {
    super({ highWaterMark: 1024 * 1024 });
    out.on('error', this.onOutError);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.failure) {
      cb(this.failure);
      return;
    }
    this.pending = cb;
    const ok = this.out.write(chunk, (e?: Error | null) => {
      if (e) this.fail(e);
    });
    if (ok) this.settle(null);
    else this.out.once('drain', this.onDrain);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.failure) {
      cb(this.failure);
      return;
    }
    // An empty write's callback runs once every earlier write has been done (or has failed).
    this.pending = cb;
    this.out.write(Buffer.alloc(0), (e?: Error | null) => {
      if (e) {
        this.fail(e);
        return;
      }
      this.out.removeListener('error', this.onOutError);
      this.settle(null);
    });
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // A write still waiting for 'drain' is abandoned; the 'error' listener stays while writes may still fail.
    this.out.removeListener('drain', this.onDrain);
    this.pending = null;
    cb(err);
  }

  private settle(e: PgpitrError | null): void {
    this.out.removeListener('drain', this.onDrain);
    const cb = this.pending;
    this.pending = null;
    cb?.(e);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = stdoutError(e);
    if (this.pending) this.settle(this.failure);
    else this.destroy(this.failure);
  }
}
