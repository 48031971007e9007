// One rate (-r) for all of a backup's SQL reader connections, on the main
// thread: a budget refilled every tick, taken before each chunk is asked for. A
// chunk larger than what is left takes it all; the next refills pay the rest.

const TICK_MS = 100;

export class RateBudget {
  private budget: number;
  private readonly waiting: (() => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(bytesPerSecond: number) {
    const perTick = Math.max(1, Math.round((bytesPerSecond * TICK_MS) / 1000));
    this.budget = perTick;
    this.timer = setInterval(() => {
      this.budget = Math.min(perTick, this.budget + perTick);
      while (this.budget > 0 && this.waiting.length > 0) this.waiting.shift()!();
    }, TICK_MS);
    this.timer.unref();
  }

  /** Resolves once `bytes` may be read. */
  async take(bytes: number): Promise<void> {
    while (this.budget <= 0 && !this.stopped) await new Promise<void>((r) => this.waiting.push(r));
    this.budget -= bytes;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const w of this.waiting.splice(0)) w();
  }
}
