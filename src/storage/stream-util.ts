// Small helpers to write to Node streams with backpressure from async code.

import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** The chunks in order, each let go of as it is taken (a source for Readable.from that holds nothing written). */
export function* drained(chunks: Buffer[]): Generator<Buffer> {
  for (let c = chunks.shift(); c !== undefined; c = chunks.shift()) yield c;
}

/** Writes; returns a promise only when the stream asks us to wait. */
export function writeWithBackpressure(out: Writable, chunk: Buffer): void | Promise<void> {
  if (out.destroyed) throw out.errored ?? new Error('write after the output was closed');
  if (out.write(chunk)) return;
  return waitDrain(out);
}

/** Settles once `out` drained (rejects when it errs or closes first). */
export function waitDrain(out: Writable): Promise<void> {
  // Plain listeners, removed by hand: this runs for every full buffer, and
  // AbortController-based once() costs an exception object per call.
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (e: Error) => done(e);
    const onClose = () => done(out.errored ?? new Error('the output was closed before it drained'));
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
  });
}

export async function endWritable(out: Writable): Promise<void> {
  out.end();
  await finished(out);
}
