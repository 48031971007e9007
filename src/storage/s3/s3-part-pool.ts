// The part buffers of one S3 storage's writes, shared by the writes in flight
// and reused: a write fills a buffer with its source's bytes (one copy, no
// joining of chunks), sends it, and the buffer goes to the next part. Reuse
// keeps a backup's memory flat: buffers of 8 MiB made and dropped per part
// are freed only when the garbage collector gets to them, and the memory the
// allocator took for them is not always given back to the system.
//
// Every write can always have one buffer (its first: takeFirst), made beyond
// the bound if need be, so that a write never waits for another one's buffers
// (whose sources may wait on it); more buffers (parts sent while the next one
// fills) only while the pool is within its bound (tryTake). At most
// max(bound, writes at once) buffers exist. SDK-free.

export class PartPool {
  private readonly free: Buffer[] = [];
  private made = 0;

  constructor(
    readonly partSize: number,
    /** Buffers kept at most, and made at most for writes' extra parts. */
    readonly bound: number,
  ) {}

  /** A write's first buffer: a free one, else a new one even past the bound. */
  takeFirst(): Buffer {
    return this.free.pop() ?? this.make();
  }

  /** A write's extra buffer: a free one, a new one within the bound, else null (the write reuses its own). */
  tryTake(): Buffer | null {
    const b = this.free.pop();
    if (b !== undefined) return b;
    return this.made < this.bound ? this.make() : null;
  }

  /** A buffer back: kept for the next part while within the bound, else let go. */
  give(b: Buffer): void {
    if (this.made > this.bound) this.made--;
    else this.free.push(b);
  }

  /** Buffers in existence (in use or free): for tests. */
  get size(): number {
    return this.made;
  }

  private make(): Buffer {
    this.made++;
    return Buffer.allocUnsafeSlow(this.partSize);
  }
}
