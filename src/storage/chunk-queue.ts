// A hand-over of buffers from a producer to one consumer that iterates them
// (a Storage write's source), with backpressure and without a stream's
// machinery: no buffering beyond `max` chunks, no joining of chunks, one
// promise per chunk. A stream's async iterator joins whatever it has buffered
// into one new buffer per read; for a parallel backup's many small compressed
// chunks that copying cost more than the write itself.

export class ChunkQueue implements AsyncIterable<Buffer> {
  private readonly items: Buffer[] = [];
  /** Per item, what to call once the consumer asks for the next one (push's release). */
  private readonly releases: ((() => void) | undefined)[] = [];
  private ended = false;
  private error: Error | null = null;
  /** The consumer waiting for an item. */
  private wake: (() => void) | null = null;
  /** Producers waiting for room. */
  private readonly room: (() => void)[] = [];

  constructor(private readonly max = 4) {}

  /**
   * Queues a chunk; resolves once there is room for the next. Rejects once the queue failed.
   * `release` is called when the consumer, having taken this chunk, asks for the next one (a
   * consumer that keeps no reference to a chunk by then is then done with it); never when the
   * iteration stops on it.
   */
  async push(chunk: Buffer, release?: () => void): Promise<void> {
    if (this.error) throw this.error;
    this.items.push(chunk);
    this.releases.push(release);
    this.signal();
    while (this.items.length >= this.max && !this.error) await new Promise<void>((r) => this.room.push(r));
    if (this.error) throw this.error;
  }

  end(): void {
    this.ended = true;
    this.signal();
  }

  /** The consumer's iteration throws `e`; pending and later pushes reject with it. */
  fail(e: Error): void {
    this.error ??= e;
    this.signal();
    for (const r of this.room.splice(0)) r();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    try {
      for (;;) {
        if (this.error) throw this.error;
        const item = this.items.shift();
        if (item !== undefined) {
          const release = this.releases.shift();
          this.room.shift()?.();
          yield item;
          release?.();
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      // The consumer stopped (done, or failed itself): producers must not wait for it. Not at once:
      // a consumer that failed closes this iteration before its own error reaches whoever passes
      // it on with fail(e) (a write that found no room on its disk), and that error, not this
      // one, is the one producers must report.
      if (!this.ended && !this.error) {
        const stopped = new Error('the consumer of the chunks stopped');
        setImmediate(() => this.fail(stopped));
      }
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
