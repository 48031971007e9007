// Filters: what bytes pass through on their one way between a source and a
// storage (size, SHA-256, compression, later encryption), each a Transform
// with a result collected at the end. The repository decides their order
// (measure the original, compress, measure what is stored, encrypt) and
// records each filter's result under the filter's name.

import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Transform } from 'node:stream';

export interface Filter {
  /** The key of its result: "size", "sha256", "stored-size"... unique within one pipeline. */
  readonly name: string;
  readonly stream: Transform;
  /** Its result, once the bytes have all passed (undefined before). */
  result(): unknown;
}

export interface Filtered {
  /** The filtered bytes: hand this to Storage.write (or any consumer). */
  output: Readable;
  /** Settles when every filter has seen the end of the input; rejects with the first error. */
  done: Promise<void>;
  /** Each filter's result by name; call after done. */
  results(): Record<string, unknown>;
}

export function applyFilters(source: Readable | AsyncIterable<Buffer>, filters: Filter[]): Filtered {
  const names = new Set<string>();
  for (const f of filters) {
    if (names.has(f.name)) throw new Error(`two filters named "${f.name}" in one pipeline`);
    names.add(f.name);
  }
  if (filters.length === 0) {
    const output = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
    return { output, done: Promise.resolve(), results: () => ({}) };
  }
  const streams = filters.map((f) => f.stream);
  const done = (pipeline as unknown as (...s: unknown[]) => Promise<void>)(source, ...streams);
  done.catch(() => {}); // the consumer of output sees the error too; done is for whoever awaits it
  return {
    output: streams[streams.length - 1]!,
    done,
    results: () => Object.fromEntries(filters.map((f) => [f.name, f.result()])),
  };
}
