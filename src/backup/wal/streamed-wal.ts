// Receives XLogData from a WAL stream and cuts it into segments for a
// SegmentStore. XLogData may cross segment boundaries; writes are split there.

import type { WalReceiver } from '../../protocol/wal-stream.js';
import type { SegmentStore } from './segment-store.js';
import { segmentFileName } from '../../postgres/lsn.js';
import { PgpitrError } from '../../common/errors.js';

export class StreamedWal implements WalReceiver {
  private segNo: bigint | null = null;
  private inSegment = 0;
  private position = 0n;
  segmentsWritten = 0;

  constructor(
    private readonly store: SegmentStore,
    private readonly timeline: number,
    private readonly segmentSize: number,
    start = 0n,
  ) {
    this.position = start; // reported as flushed until WAL arrives
  }

  async write(start: bigint, data: Buffer): Promise<void> {
    const seg = BigInt(this.segmentSize);
    if (this.segNo !== null && start !== this.position) {
      throw new PgpitrError('ERR_PROTOCOL', `WAL stream jumped from ${this.position} to ${start}`);
    }
    let offset = 0;
    let pos = start;
    while (offset < data.length) {
      const segNo = pos / seg;
      if (this.segNo !== segNo) {
        if (this.segNo !== null) await this.store.close(this.inSegment);
        this.segNo = segNo;
        this.inSegment = Number(pos % seg);
        if (this.inSegment !== 0 && this.segmentsWritten === 0) {
          throw new PgpitrError('ERR_PROTOCOL', 'WAL streaming did not start at a segment boundary');
        }
        await this.store.open(segmentFileName(this.timeline, segNo, this.segmentSize));
        this.segmentsWritten++;
      }
      const room = this.segmentSize - this.inSegment;
      const n = Math.min(room, data.length - offset);
      const part = offset === 0 && n === data.length ? data : data.subarray(offset, offset + n);
      const r = this.store.write(part);
      if (r) await r;
      this.inSegment += n;
      offset += n;
      pos += BigInt(n);
    }
    this.position = pos;
  }

  /** A whole file beside the segments (the history file of the timeline), before any segment. */
  async whole(name: string, data: Buffer): Promise<void> {
    await this.store.whole(name, data);
  }

  flushed(): bigint {
    return this.position;
  }

  async finish(): Promise<void> {
    if (this.segNo !== null) await this.store.close(this.inSegment);
    this.segNo = null;
    await this.store.finish();
  }

  abort(): void {
    this.store.abort();
  }
}
