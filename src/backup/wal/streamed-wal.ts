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
  /** The stream (re)started: its first WAL must be at a segment boundary. */
  private fresh = true;

  constructor(
    private readonly store: SegmentStore,
    private timeline: number,
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
        if (this.inSegment !== 0 && this.fresh) {
          throw new PgpitrError('ERR_PROTOCOL', 'WAL streaming did not start at a segment boundary');
        }
        this.fresh = false;
        await this.store.open(segmentFileName(this.timeline, segNo, this.segmentSize));
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

  /**
   * The server ended the timeline: the open segment is closed as far as it was received
   * (zero-filled, as at the end of a stream), and the stream goes on along `timeline` from `start`,
   * the start of the segment where it branched (that segment again, under the new timeline's name).
   */
  async switchTimeline(timeline: number, start: bigint): Promise<void> {
    if (this.segNo !== null) await this.store.close(this.inSegment);
    this.segNo = null;
    this.timeline = timeline;
    this.position = start;
    this.fresh = true;
  }

  /** A whole file beside the segments (the history file of a timeline), with no segment open. */
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
