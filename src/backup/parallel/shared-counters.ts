// The state every reader thread of one backup shares with the main thread, in
// one SharedArrayBuffer: whatever the number of workers there is one rate
// budget, one count of bytes done and one abort flag per backup, and each worker
// has its flow credits (how many more chunks it may hand back before the main
// thread has consumed some); and where the next member goes in a tar file the
// readers write into themselves (BackupSink.directTar).

const enum Slot {
  Abort = 0,
  /** 1 when a rate limit applies. */
  Limited = 1,
  /**
   * Bytes the workers may still read before the next refill. Below zero: a debt, a
   * chunk larger than what was left was read and the next refills pay for it first.
   */
  Budget = 2,
  Credits = 3, // one per worker from here
}

/** Where the two shared arrays live: what a worker is handed to attach to them. */
export interface SharedCounterBuffers {
  counters: SharedArrayBuffer;
  done: SharedArrayBuffer;
}

export class SharedCounters {
  private readonly view: Int32Array;
  /** [0]: bytes done by all workers; [1]: the end of what is reserved in a tar file written directly. */
  private readonly done: BigInt64Array;

  constructor(readonly buffers: SharedCounterBuffers) {
    this.view = new Int32Array(buffers.counters);
    this.done = new BigInt64Array(buffers.done);
  }

  static create(workers: number): SharedCounters {
    return new SharedCounters({ counters: new SharedArrayBuffer(4 * (Slot.Credits + workers)), done: new SharedArrayBuffer(16) });
  }

  // --- abort
  abort(): void {
    Atomics.store(this.view, Slot.Abort, 1);
    for (let i = Slot.Budget; i < this.view.length; i++) Atomics.notify(this.view, i);
  }

  get aborted(): boolean {
    return Atomics.load(this.view, Slot.Abort) === 1;
  }

  // --- rate budget
  /** Main thread: allow `bytes` more (called on a timer when a rate is set). */
  refill(bytes: number, cap: number): void {
    for (;;) {
      const now = Atomics.load(this.view, Slot.Budget);
      if (Atomics.compareExchange(this.view, Slot.Budget, now, Math.min(cap, now + bytes)) === now) break;
    }
    Atomics.notify(this.view, Slot.Budget);
  }

  limitRate(): void {
    Atomics.store(this.view, Slot.Budget, 0);
    Atomics.store(this.view, Slot.Limited, 1);
  }

  /** Worker: wait until `bytes` may be read. False when the backup was aborted. */
  take(bytes: number): boolean {
    for (;;) {
      if (this.aborted) return false;
      if (Atomics.load(this.view, Slot.Limited) === 0) return true;
      const now = Atomics.load(this.view, Slot.Budget);
      if (now > 0) {
        // A chunk larger than what is left is read all the same, on credit: the budget goes
        // below zero and the next refills pay the debt before anyone reads again (one 1 MiB
        // chunk per refill would otherwise pass whatever the rate).
        if (Atomics.compareExchange(this.view, Slot.Budget, now, now - bytes) === now) return true;
        continue;
      }
      Atomics.wait(this.view, Slot.Budget, now, 200);
    }
  }

  // --- bytes done
  addDone(bytes: number): void {
    Atomics.add(this.done, 0, BigInt(bytes));
  }

  get doneBytes(): number {
    return Number(Atomics.load(this.done, 0));
  }

  // --- a tar file written directly
  /** Main thread: the readers' members start at `position` of the tar file. */
  set tarEnd(position: number) {
    Atomics.store(this.done, 1, BigInt(position));
  }

  /** Where the members reserved so far end. */
  get tarEnd(): number {
    return Number(Atomics.load(this.done, 1));
  }

  /** Reserves `bytes` of the tar file: their position. */
  reserveTar(bytes: number): number {
    return Number(Atomics.add(this.done, 1, BigInt(bytes)));
  }

  // --- flow credits
  grant(worker: number, n: number): void {
    Atomics.add(this.view, Slot.Credits + worker, n);
    Atomics.notify(this.view, Slot.Credits + worker);
  }

  /** Worker: wait for a credit to hand back one chunk. False when the backup was aborted. */
  spend(worker: number): boolean {
    const i = Slot.Credits + worker;
    for (;;) {
      if (this.aborted) return false;
      const now = Atomics.load(this.view, i);
      if (now > 0) {
        if (Atomics.compareExchange(this.view, i, now, now - 1) === now) return true;
        continue;
      }
      Atomics.wait(this.view, i, now, 200);
    }
  }
}
