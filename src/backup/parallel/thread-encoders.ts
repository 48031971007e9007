// The synchronous compressors of a reader thread (read-worker.ts, and the sql
// read method's threads through job-output.ts): one per method and level,
// made on first use and kept for the thread's life.

import { syncEncoder } from '../../storage/compress/sync-encoder.js';
import type { SyncEncoder } from '../../storage/compress/sync-encoder.js';
import type { ReadJob } from './read-job.js';

const encoders = new Map<string, SyncEncoder>();

export function encoderFor(compression: NonNullable<ReadJob['encode']>['compression'], level: number | undefined): SyncEncoder {
  if (compression === 'none') throw new Error('no encoder for uncompressed data');
  const key = `${compression}:${level ?? ''}`;
  let e = encoders.get(key);
  if (!e) {
    const made = syncEncoder(compression, level);
    if (!made) throw new Error(`no synchronous ${compression} compressor in this process (the main thread checks before asking)`);
    encoders.set(key, made);
    e = made;
  }
  return e;
}
