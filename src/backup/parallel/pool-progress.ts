// Progress of a -j backup's bytes that never pass the engine's tar count: files
// the readers write or store themselves. Once counting starts, the pool's shared
// count of bytes read is reported (every 200 ms and when asked), for every byte
// read from then on: what was read before went through a tar and was counted
// there, and chunks handed back through a tar after it add nothing
// (TarWriter's readsCounted, which `counting` answers).

export class PoolProgress {
  private reported = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly doneBytes: () => number,
    private readonly onBytes: (n: number) => void,
  ) {}

  /** Whether the pool's count is the one reported (chunks through a tar then count for nothing more). */
  get counting(): boolean {
    return this.timer !== null;
  }

  start(): void {
    if (this.timer !== null) return;
    this.reported = this.doneBytes();
    this.timer = setInterval(() => this.report(), 200);
  }

  report(): void {
    if (this.timer === null) return;
    const now = this.doneBytes();
    if (now > this.reported) this.onBytes(now - this.reported);
    this.reported = now;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}
