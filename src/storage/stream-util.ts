// Small helpers to write to Node streams with backpressure from async code.

import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** Writes; returns a promise only when the stream asks us to wait. */
export function writeWithBackpressure(out: Writable, chunk: Buffer): void | Promise<void> {
  if (out.destroyed) throw out.errored ?? new Error('write after the output was closed');
  if (out.write(chunk)) return;
  return waitDrain(out);
}

async function waitDrain(out: Writable): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race([
      once(out, 'drain', { signal: ac.signal }),
      once(out, 'error', { signal: ac.signal }).then(([e]) => {
        throw e;
      }),
      once(out, 'close', { signal: ac.signal }).then(() => {
        if (out.errored) throw out.errored;
      }),
    ]);
  } finally {
    ac.abort();
  }
}

export async function endWritable(out: Writable): Promise<void> {
  out.end();
  await finished(out);
}
