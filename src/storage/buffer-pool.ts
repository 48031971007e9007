// A few large buffers of one size, taken and given back, so that work done
// again and again on files of that size (WAL segments: read, compress) does not
// make the kernel fault in and zero fresh memory each time (~4 ms of CPU per
// 16 MiB here) nor leave the garbage collector that memory to find.

export class BufferPool {
  private readonly free: Buffer[] = [];

  /** `keep`: most buffers held while unused; more can be out at once. */
  constructor(readonly size: number, private readonly keep: number) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives a buffer back; its content is then fair game. */
  give(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.keep && !this.free.includes(buf)) this.free.push(buf);
  }
}

const pools = new Map<number, BufferPool>();

/** The process-wide pool of buffers of `size` bytes. */
export function poolFor(size: number, keep = 4): BufferPool {
  let pool = pools.get(size);
  if (!pool) {
    pool = new BufferPool(size, keep);
    pools.set(size, pool);
  }
  return pool;
}
