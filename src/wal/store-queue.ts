// Repository mode of receive-wal stores completed segments in the background,
// so that compressing and syncing one never stops the stream (the server would
// see us fall behind). At most `concurrency` are stored at once and at most
// `maxPending` wait; past that, adding waits (the socket then slows the
// server, and disk use stays bounded). A segment file stays in the receive
// directory until it is stored, so a later start finds it and stores it again.
//
// A store that fails is, with `retry`, tried again after a growing delay (the
// repository down for a while: the stream goes on until maxPending wait), the
// files in the order they were added; without it, the failure is raised by the
// next add() or by drain() (receive-wal --no-loop: the command fails).

export interface StoreRetry {
  /** Delay before the n-th try again (n from 1). */
  delayMs(attempt: number): number;
  /** Said for each failure, with the delay before the next try. */
  failed(path: string, e: Error, delayMs: number): void;
  /** A failure no wait mends (the file refused for good): raised, as without retry. */
  final?(e: Error): boolean;
}

export class StoreQueue {
  /** The files being stored. */
  private readonly running = new Set<string>();
  private readonly queue: string[] = [];
  private failure: Error | null = null;
  private waiters: (() => void)[] = [];
  /** Failures in a row (with retry), and the pending try again. */
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** stop() was called: nothing more is started, nor tried again. */
  private stopped = false;

  /**
   * `stopping`: once aborted (receive-wal told to stop), add() waits no more for room: the files
   * stay in the directory for the next start, and the stream can end (SIGTERM while the repository
   * is down must not hang until a SIGKILL).
   */
  constructor(
    private readonly store: (path: string) => Promise<void>,
    private readonly concurrency: number,
    private readonly maxPending: number,
    private readonly retry: StoreRetry | null = null,
    private readonly stopping?: AbortSignal,
  ) {
    stopping?.addEventListener('abort', () => this.signal(), { once: true });
  }

  /** Queues `path` (once: a file queued or being stored is not queued again); waits while too many wait (not once `stopping`). */
  async add(path: string): Promise<void> {
    this.throwIfFailed();
    if (!this.queue.includes(path) && !this.running.has(path)) this.queue.push(path);
    this.pump();
    while (this.queue.length > this.maxPending && !this.failure && this.stopping?.aborted !== true && !this.stopped) await this.changed();
    this.throwIfFailed();
  }

  /** Waits until every added file is stored (throws the first failure without retry); gives up when `signal` is aborted. */
  async drain(signal?: AbortSignal): Promise<void> {
    const onAbort = () => this.signal();
    signal?.addEventListener('abort', onAbort);
    try {
      while ((this.queue.length > 0 || this.running.size > 0) && !this.failure && !signal?.aborted && !this.stopped) await this.changed();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    this.throwIfFailed();
  }

  /** Stops storing: no new store starts, none is tried again (the files stay where they are for the next start). */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.signal(); // a drain or an add waiting for room waits no more
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.queue.length > 0 && !this.failure && this.retryTimer === null) {
      const path = this.queue.shift()!;
      this.running.add(path);
      void this.store(path).then(
        () => {
          this.running.delete(path);
          this.attempts = 0;
          this.pump();
          this.signal();
        },
        (e: Error) => {
          this.running.delete(path);
          if (this.retry === null || this.retry.final?.(e) === true) this.failure ??= e;
          else this.tryAgainLater(path, e);
          this.signal();
        },
      );
    }
  }

  private tryAgainLater(path: string, e: Error): void {
    this.queue.unshift(path); // first again: the files go in the order they were received
    // A store in flight when the queue was stopped: its file stays for the next start, no timer keeps the process alive.
    if (this.stopped) return;
    this.attempts++;
    const delay = this.retry!.delayMs(this.attempts);
    this.retry!.failed(path, e, delay);
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, delay); // not unref'd: a drain waiting for it must keep the process alive (stop() clears it)
  }

  private changed(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private signal(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}
