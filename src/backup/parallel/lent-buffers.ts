// The buffers a reader thread lends to the main thread with the chunks it hands
// back (a job with `lend`, read-job.ts): the main thread gives each back through
// the thread's return port once its handler released it (read-pool.ts), and the
// thread reads or compresses into it again. Without them every chunk is fresh
// memory: page faults that cost more than the read, and transferred buffers the
// main thread's collector frees only when it next runs (measured: a -j 2 sql
// backup compressed with lz4 peaked at 249 MB that way).
//
// Used by both read methods' threads (read-worker.ts, job-output.ts).

import { receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';

/** A lent buffer's size (read-pool.ts gives back only these): a chunk as read, or compressed (its bound, for lz4 and zstd). */
export const LENT = 1024 * 1024 + 64 * 1024;

export class LentBuffers {
  private readonly spare: ArrayBuffer[] = [];

  constructor(private readonly returns: MessagePort) {}

  /** A buffer to lend (LENT bytes): one that came back, or a new one. */
  take(): Buffer {
    for (let m = receiveMessageOnPort(this.returns); m !== undefined; m = receiveMessageOnPort(this.returns)) this.spare.push(m.message as ArrayBuffer);
    const back = this.spare.pop();
    return back ? Buffer.from(back) : Buffer.allocUnsafeSlow(LENT);
  }
}
