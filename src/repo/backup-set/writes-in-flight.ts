// The writes of a backup set's writer (writer.ts) in flight: at most so many at once,
// slots given in the order they were asked for, and the first failure kept, which
// refuses every write after it.

import { Slots } from '../../common/slots.js';
import { isStreamEcho } from '../../storage/stream-echo.js';

export class WritesInFlight {
  private readonly inflight = new Set<Promise<void>>();
  private readonly slots: Slots;
  private failure: unknown = null;
  /** The first failure of a write itself (a full disk), whatever stopped the backup first. */
  private writeFailure: unknown = null;

  constructor(parallel: number) {
    this.slots = new Slots(parallel);
  }

  /**
   * Starts a write once fewer than `parallel` are in flight (the caller may feed it after).
   * Slots go to callers in the order they asked: a parallel backup's reader may start its
   * next file while its last one still waits for a slot, and must not take it first.
   */
  async track(start: () => Promise<void>): Promise<void> {
    await this.slots.acquire();
    try {
      this.throwIfFailed();
    } catch (e) {
      this.slots.release();
      throw e;
    }
    const tracked: Promise<void> = start().then(
      () => {
        this.inflight.delete(tracked);
        this.slots.release();
      },
      (e) => {
        this.inflight.delete(tracked);
        this.failure ??= e;
        // The first failure that is not only another write's echo (a segment's source cut when a file's write found the disk full).
        if (this.writeFailure === null || (isStreamEcho(this.writeFailure) && !isStreamEcho(e))) this.writeFailure = e;
        this.slots.release();
      },
    );
    this.inflight.add(tracked);
  }

  /** Every write done; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.all([...this.inflight]);
    this.throwIfFailed();
  }

  /**
   * Refuses every write from now on (with `why` unless one failed already), waits for those in
   * flight, ignoring failures, and resolves with the first failure of a write (null: none).
   */
  async refuse(why: Error): Promise<unknown> {
    this.failure ??= why;
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    return this.writeFailure;
  }

  throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }
}
