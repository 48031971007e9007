// A fixed number of slots handed out in the order they were asked for (a FIFO
// counting semaphore): a released slot goes to the longest waiting caller, so a
// caller that asks later never overtakes one that asked first.

export class Slots {
  private taken = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** Resolves once the caller holds a slot (at once when one is free and nobody waits). */
  async acquire(): Promise<void> {
    if (this.taken < this.size && this.waiters.length === 0) {
      this.taken++;
      return;
    }
    await new Promise<void>((handed) => this.waiters.push(handed));
  }

  /** The slot goes to the longest waiting caller, or back to the free ones. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.taken--;
  }
}
