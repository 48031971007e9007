// SHA-256 of buffers on a thread of its own (the other half is
// sha256-thread-worker.ts), for a caller whose main thread has other work: restore
// reading archived WAL for its target hashes each 16 MiB segment (~10 ms, all of
// it on the main thread before) while it walks the records of the one before.
// The buffers are shared, not copied: their memory must be a SharedArrayBuffer's
// (sharedBuffer()), and must not change until digest() settles.

import { Worker } from 'node:worker_threads';
import { endThread } from '../common/thread-exit.js';

/** What the thread answers: the digest in hex, or why not. */
export type Sha256Reply = { id: number; hex: string } | { id: number; error: string };

/** A buffer of `size` bytes whose memory the thread can read (zero-filled). */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

export class Sha256Thread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(hex: string): void; reject(e: Error): void }>();
  private next = 0;
  private broken: Error | null = null;

  /** Starts the thread now: its start overlaps what comes before the first digest. */
  constructor() {
    this.worker = new Worker(new URL('./sha256-thread-worker.js', import.meta.url));
    this.worker.on('message', (m: Sha256Reply) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) this.worker.unref();
      if ('hex' in m) w?.resolve(m.hex);
      else w?.reject(new Error(m.error));
    });
    const fail = (e: Error) => {
      this.broken ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the SHA-256 thread exited (code ${code})`)));
    // Referenced only while a digest is awaited: an idle thread nobody stopped does not keep the
    // process alive (after the listeners, which reference it again when added).
    this.worker.unref();
  }

  /** Whether `buf` can be handed to the thread (its memory is shared). */
  static canHash(buf: Buffer): boolean {
    return buf.buffer instanceof SharedArrayBuffer;
  }

  /** The SHA-256 of `buf` (shared memory: canHash), in hex. */
  digest(buf: Buffer): Promise<string> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.next++;
    return new Promise<string>((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, memory: buf.buffer, offset: buf.byteOffset, length: buf.length });
    });
  }

  async stop(): Promise<void> {
    await endThread(this.worker);
  }
}
