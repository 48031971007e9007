// Repository mode of receive-wal stores completed segments in the background,
// so that compressing and syncing one never stops the stream (the server would
// see us fall behind). At most `concurrency` are stored at once and at most
// `maxPending` wait; past that, adding waits (the socket then slows the
// server, and disk use stays bounded). A failure is raised by the next add()
// or by drain(); the segment file stays in the receive directory, where the
// next start finds it and stores it again.

export class StoreQueue {
  private readonly running = new Set<Promise<void>>();
  private readonly queue: string[] = [];
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly store: (path: string) => Promise<void>,
    private readonly concurrency: number,
    private readonly maxPending: number,
  ) {}

  async add(path: string): Promise<void> {
    this.throwIfFailed();
    this.queue.push(path);
    this.pump();
    while (this.queue.length > this.maxPending && !this.failure) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    this.throwIfFailed();
  }

  /** Waits until every added segment is stored; throws the first failure. */
  async drain(): Promise<void> {
    while ((this.queue.length > 0 || this.running.size > 0) && !this.failure) {
      await Promise.race(this.running);
    }
    this.throwIfFailed();
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.queue.length > 0 && !this.failure) {
      const path = this.queue.shift()!;
      const p: Promise<void> = this.store(path).then(
        () => {
          this.running.delete(p);
          this.pump();
          this.signal();
        },
        (e: Error) => {
          this.running.delete(p);
          this.failure ??= e;
          this.signal();
        },
      );
      this.running.add(p);
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
