// pg_receivewal's on-disk behaviour: the segment being received is
// <name>.partial, written at its offset; once full it is synced, renamed to its
// final name and the directory synced. An optional hook then takes the
// completed segment (repository mode pushes it into the stanza's archive).
// In synchronous mode what was written is synced before each position report,
// which the stream sends once it has written everything received so far.

import { openSync, writeSync, fsyncSync, fsync, closeSync, renameSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import type { WalReceiver } from '../protocol/wal-stream.js';
import { segmentFileName } from '../postgres/lsn.js';
import { storageError, PgpitrError } from '../common/errors.js';
import { fsyncPathSync } from '../storage/durable.js';

export interface SegmentFilesOptions {
  dir: string;
  timeline: number;
  segmentSize: number;
  sync: boolean;
  synchronous: boolean;
  /** Called with each completed segment (full path, name). */
  onComplete?: (path: string, name: string) => Promise<void>;
  onSegment?: (name: string) => void;
}

export class SegmentFiles implements WalReceiver {
  private fd: number | null = null;
  private segNo: bigint | null = null;
  private partialPath = '';
  private position = 0n;
  private synced = 0n;
  private pendingSync: Promise<void> | null = null;
  readonly reportEveryWrite: boolean;

  constructor(private readonly o: SegmentFilesOptions, start: bigint) {
    this.position = start;
    this.synced = start;
    this.reportEveryWrite = o.synchronous;
  }

  async write(start: bigint, data: Buffer): Promise<void> {
    if (start !== this.position) {
      throw new PgpitrError('ERR_PROTOCOL', `WAL stream jumped from ${this.position} to ${start}`);
    }
    const seg = BigInt(this.o.segmentSize);
    let offset = 0;
    let pos = start;
    while (offset < data.length) {
      const segNo = pos / seg;
      if (this.segNo !== segNo) this.open(segNo, Number(pos % seg));
      const inSeg = Number(pos % seg);
      const n = Math.min(this.o.segmentSize - inSeg, data.length - offset);
      let done = 0;
      try {
        while (done < n) done += writeSync(this.fd!, data, offset + done, n - done, inSeg + done);
      } catch (e) {
        throw storageError('write WAL to', this.partialPath, e);
      }
      offset += n;
      pos += BigInt(n);
      this.position = pos;
      if (inSeg + n === this.o.segmentSize) await this.complete();
    }
  }

  /**
   * Synchronous mode: called by the stream before it reports the flush position. The
   * fsync runs on the thread pool, so that receiving continues meanwhile; what it
   * covers is what was written when it started.
   */
  async syncNow(): Promise<void> {
    const target = this.position;
    const fd = this.fd;
    if (fd !== null) {
      const path = this.partialPath;
      const done = new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(storageError('fsync', path, e)) : resolve())));
      this.pendingSync = done.catch(() => {}); // awaited before the file is closed
      await done;
    }
    if (target > this.synced) this.synced = target;
  }

  written(): bigint {
    return this.position;
  }

  flushed(): bigint {
    return this.synced;
  }

  /** Sync the partial segment (on exit, or before a status report in normal mode). */
  syncPartial(): void {
    if (this.fd !== null && this.o.sync) {
      fsyncSync(this.fd);
      this.synced = this.position;
    }
  }

  /** Stop writing: the current segment stays a .partial file. Returns its path, if any. */
  close(): string | null {
    if (this.fd === null) return null;
    this.syncPartial();
    closeSync(this.fd);
    this.fd = null;
    this.segNo = null;
    return this.partialPath;
  }

  private open(segNo: bigint, offsetInSegment: number): void {
    if (this.fd !== null) closeSync(this.fd);
    const name = segmentFileName(this.o.timeline, segNo, this.o.segmentSize);
    this.partialPath = join(this.o.dir, `${name}.partial`);
    try {
      this.fd = openSync(this.partialPath, offsetInSegment === 0 ? 'w' : 'r+', 0o600);
      if (offsetInSegment === 0) ftruncateSync(this.fd, this.o.segmentSize);
    } catch (e) {
      throw storageError('open', this.partialPath, e);
    }
    this.segNo = segNo;
    this.o.onSegment?.(name);
  }

  private async complete(): Promise<void> {
    await this.pendingSync; // an fsync of this file may still run on the thread pool
    this.pendingSync = null;
    const fd = this.fd!;
    const name = segmentFileName(this.o.timeline, this.segNo!, this.o.segmentSize);
    const final = join(this.o.dir, name);
    try {
      if (this.o.sync) fsyncSync(fd);
      closeSync(fd);
      renameSync(this.partialPath, final);
      if (this.o.sync) fsyncPathSync(this.o.dir);
    } catch (e) {
      throw storageError('complete WAL segment', final, e);
    } finally {
      this.fd = null;
      this.segNo = null;
    }
    this.synced = this.position;
    await this.o.onComplete?.(final, name);
  }
}
