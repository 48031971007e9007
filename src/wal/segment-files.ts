// pg_receivewal's on-disk behaviour: the segment being received is
// <name>.partial, written at its offset; once full it is synced, renamed to its
// final name and the directory synced. An optional hook then takes the
// completed segment (repository mode pushes it into the stanza's archive).
// In synchronous mode what was written is synced before each position report,
// which the stream sends once it has written everything received so far.
//
// Nothing slow runs on the main thread while WAL streams in: writes go to the
// page cache, and the fsyncs (of the partial file, of a finished segment and of
// the directory after its rename) run on the thread pool. A finished segment is
// renamed in the background while the next one is already being written;
// retirements run in order, one at a time, and at most MAX_RETIRING wait
// before write() makes the stream wait (backpressure to the server).
//
// Crash safety rests on one order: the next segment's file is created only once
// the finished one's data is fsynced (with --no-sync: written). So whenever
// <T,N+1> exists on disk, <T,N> holds its whole content even if it is still
// named .partial (killed before its rename): the next start completes it
// (interrupted-segments.ts). And nothing is reported flushed past a segment's
// end until its rename and the directory are synced. To keep the wait for
// that fsync short, the segment's first half is synced in the background as
// soon as it is written.

import { renameSync, unlinkSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { WalReceiver } from '../protocol/wal-stream.js';
import { segmentFileName } from '../postgres/lsn.js';
import { storageError, PgpitrError } from '../common/errors.js';
import { openSegmentWriter } from './segment-writer.js';
import { resumeTempPath } from './resumed-partial.js';
import type { SegmentWriter, WriterCompression } from './segment-writer.js';
import { receivedFileName } from './received-file-names.js';
import { fsyncPath } from '../storage/durable.js';

export interface SegmentFilesOptions {
  dir: string;
  timeline: number;
  segmentSize: number;
  sync: boolean;
  synchronous: boolean;
  /** -Z: segments written as .gz / .lz4 (and .gz.partial / .lz4.partial while received). */
  compression?: WriterCompression | null | undefined;
  /** Called with each completed segment (full path, name), in order; may wait (backpressure). */
  onComplete?: (path: string, name: string) => Promise<void>;
  onSegment?: (name: string) => void;
  /** How the directory is synced (after a file is made in it, after a rename); default fsyncPath. */
  syncDirectory?: (dir: string) => Promise<void>;
  log?: (line: string) => void;
}

const MAX_RETIRING = 2;

export class SegmentFiles implements WalReceiver {
  private file: SegmentWriter | null = null;
  private segNo: bigint | null = null;
  private partialPath = '';
  private position = 0n;
  private synced = 0n;
  /** fsync of the current partial file running on the thread pool, if any. */
  private pendingSync: Promise<void> | null = null;
  /** Settles once every finished segment is synced and renamed (in order). */
  private durable: Promise<void> = Promise.resolve();
  /**
   * Settles once the directory entry of the file being received is durable (its fsync, started when
   * the file was made): a position in a file whose name a crash could lose is not flushed
   * (walmethods.c syncs the directory after creating a file for the same reason).
   */
  private entryDurable: Promise<void> = Promise.resolve();
  /** Settles once the last finished segment's data is synced: the next file is created only then. */
  private predecessorSynced: Promise<void> = Promise.resolve();
  /** Finished segments being handed to onComplete, oldest first (each after it is durable). */
  private readonly handing: Promise<void>[] = [];
  private failure: Error | null = null;
  /** Files an fsync of which failed: never synced again nor renamed complete (a later fsync would succeed over the lost write). */
  private readonly unsynced = new Set<SegmentWriter>();
  readonly reportEveryWrite: boolean;

  constructor(private readonly o: SegmentFilesOptions, start: bigint) {
    this.position = start;
    this.synced = start;
    this.reportEveryWrite = o.synchronous;
  }

  async write(start: bigint, data: Buffer): Promise<void> {
    this.throwIfFailed();
    if (start !== this.position) {
      throw new PgpitrError('ERR_PROTOCOL', `WAL stream jumped from ${this.position} to ${start}`);
    }
    const seg = BigInt(this.o.segmentSize);
    let offset = 0;
    let pos = start;
    while (offset < data.length) {
      const segNo = pos / seg;
      if (this.segNo !== segNo) {
        await this.predecessorSynced; // its failure is this.failure
        this.throwIfFailed();
        this.open(segNo, Number(pos % seg));
      }
      const inSeg = Number(pos % seg);
      const n = Math.min(this.o.segmentSize - inSeg, data.length - offset);
      const wrote = this.file!.write(data.subarray(offset, offset + n), inSeg);
      if (wrote) await wrote;
      offset += n;
      pos += BigInt(n);
      this.position = pos;
      const half = this.o.segmentSize / 2;
      if (inSeg < half && inSeg + n >= half && inSeg + n < this.o.segmentSize) this.syncPartial();
      if (inSeg + n === this.o.segmentSize) this.retire();
    }
    while (this.handing.length > MAX_RETIRING && !this.failure) await this.handing[0]!.catch(() => {});
    this.throwIfFailed();
  }

  /**
   * Synchronous mode: called by the stream before it reports the flush position. The
   * fsync runs on the thread pool, so that receiving continues meanwhile; what it
   * covers is what was written when it started, and earlier segments are
   * retired (synced, renamed) before it counts.
   */
  async syncNow(): Promise<void> {
    this.throwIfFailed();
    // One fsync of the file at a time: of two at once, Linux reports a lost write to one only, and
    // the other would count the position flushed.
    if (this.pendingSync !== null) await this.pendingSync.catch(() => {});
    this.throwIfFailed();
    const target = this.position;
    const file = this.file;
    const retired = this.durable;
    const entry = this.entryDurable;
    if (file !== null && this.o.sync) {
      // An fsync that failed is never retried on the file: Linux reports a lost write once, and a
      // later fsync of the same file succeeds over it. The receiver stops here, keeping nothing of it.
      const path = this.partialPath;
      const done = file.sync().catch((e: unknown) => {
        this.unsynced.add(file);
        throw this.fail(e instanceof PgpitrError ? e : storageError('fsync', path, e));
      });
      const earlier = this.pendingSync; // a background sync may still run: the file closes after both
      const both: Promise<void> = Promise.all([earlier, done.catch(() => {})]).then(() => {
        // Settled: the timer's syncPartial may run again (it waits for no sync in flight).
        if (this.pendingSync === both) this.pendingSync = null;
      });
      this.pendingSync = both;
      await done;
    }
    await retired;
    await entry;
    this.throwIfFailed();
    if (target > this.synced) this.synced = target;
  }

  written(): bigint {
    return this.position;
  }

  flushed(): bigint {
    return this.synced;
  }

  /** Sync the partial segment (timer in normal mode, so that the next report can count it). */
  syncPartial(): void {
    if (this.file !== null && this.o.sync && this.pendingSync === null) {
      const target = this.position;
      const file = this.file;
      const path = this.partialPath;
      const retired = this.durable;
      const entry = this.entryDurable;
      const p: Promise<void> = file.sync().then(
        async () => {
          // An earlier segment's retirement that failed is recorded by it (fail()): nothing counts then.
          const ok = (await retired.then(() => true, () => false)) && (await entry.then(() => true, () => false));
          if (ok && !this.failure && target > this.synced) this.synced = target;
        },
        (e: unknown) => {
          // Fatal, as in syncNow: a later fsync of this file would report success over the lost write.
          this.unsynced.add(file);
          this.fail(e instanceof PgpitrError ? e : storageError('fsync', path, e));
        },
      ).finally(() => {
        if (this.pendingSync === p) this.pendingSync = null;
      });
      this.pendingSync = p;
    }
  }

  /**
   * Stop writing: waits for the finished segments to be retired, syncs the one being
   * received, which stays a .partial file, and returns its path, if any. Throws the
   * first failure of a retirement.
   */
  async close(): Promise<string | null> {
    while (this.handing.length > 0) await this.handing[0]!.catch(() => {});
    await this.durable.catch(() => {});
    await this.pendingSync;
    await this.entryDurable.catch(() => {}); // its failure is this.failure
    const file = this.file;
    const path = this.partialPath;
    this.file = null;
    this.segNo = null;
    if (file !== null) {
      try {
        if (this.unsynced.has(file)) {
          await file.finish(false); // closed, not synced: nothing more is claimed of it
          this.throwIfFailed();
        }
        await file.finish(this.o.sync);
        if (!this.failure) this.synced = this.position;
      } catch (e) {
        this.failure ??= e instanceof PgpitrError ? e : storageError('fsync', path, e);
      }
    }
    this.throwIfFailed();
    return file === null ? null : path;
  }

  private open(segNo: bigint, offsetInSegment: number): void {
    const name = segmentFileName(this.o.timeline, segNo, this.o.segmentSize);
    const compression = this.o.compression ?? null;
    this.partialPath = join(this.o.dir, receivedFileName(name, compression?.algorithm ?? null, true));
    if (offsetInSegment === 0) this.removeOtherPartials(name);
    this.file = openSegmentWriter(this.partialPath, this.o.segmentSize, offsetInSegment, compression, { sync: this.o.sync, syncDirectory: this.o.syncDirectory ?? fsyncPath, log: this.o.log });
    if (this.o.sync) {
      const dir = this.o.dir;
      const entry = (this.o.syncDirectory ?? fsyncPath)(dir).catch((e: unknown) => {
        throw this.fail(e instanceof PgpitrError ? e : storageError('fsync', dir, e));
      });
      entry.catch(() => {}); // awaited by whatever counts a position in this file flushed
      this.entryDurable = entry;
    }
    this.segNo = segNo;
    this.pendingSync = null;
    this.o.onSegment?.(name);
  }

  /** The current segment is full: sync, close and rename it in the background, then hand it on. */
  private retire(): void {
    const file = this.file!;
    const partial = this.partialPath;
    const name = segmentFileName(this.o.timeline, this.segNo!, this.o.segmentSize);
    const final = join(this.o.dir, receivedFileName(name, this.o.compression?.algorithm ?? null, false));
    const end = this.position;
    const running = this.pendingSync; // an fsync of this file may still run on the thread pool
    this.file = null;
    this.segNo = null;
    this.pendingSync = null;
    const dataSynced = (async () => {
      try {
        await running;
        // A sync of this file failed (syncNow, syncPartial): it is closed, never renamed complete.
        if (this.unsynced.has(file)) {
          await file.finish(false).catch(() => {});
          this.throwIfFailed();
        }
        await file.finish(this.o.sync);
      } catch (e) {
        throw this.fail(e instanceof PgpitrError ? e : storageError('fsync', partial, e));
      }
    })();
    this.predecessorSynced = dataSynced.catch(() => {});
    const previous = this.durable;
    const durable = (async () => {
      try {
        await dataSynced;
        await previous; // in order: a segment is never renamed before its predecessor
        await fsp.rename(partial, final);
        if (this.o.sync) await (this.o.syncDirectory ?? fsyncPath)(this.o.dir);
      } catch (e) {
        throw this.fail(e instanceof PgpitrError ? e : storageError('complete WAL segment', final, e));
      }
      try {
        this.removeSuperseded(name); // complete and durable: an earlier form's .partial of it is of no use
      } catch {
        /* left: its name is no segment's */
      }
      if (end > this.synced) this.synced = end;
    })();
    this.durable = durable;
    const before = this.handing[this.handing.length - 1];
    const handed: Promise<void> = (async () => {
      await durable;
      await before?.catch(() => {}); // in order: onComplete sees segments as they were received
      this.throwIfFailed();
      try {
        await this.o.onComplete?.(final, name);
      } catch (e) {
        throw this.fail(e as Error);
      }
    })().finally(() => {
      this.handing.splice(this.handing.indexOf(handed), 1);
    });
    this.handing.push(handed);
    // Failures are reported by write(), syncNow() or close().
    durable.catch(() => {});
    handed.catch(() => {});
  }

  /**
   * A segment received again from its start replaces what an earlier run left of it
   * in another form (.partial written without -Z, or with another method), so that
   * no stale copy of it is ever taken for complete.
   */
  private removeOtherPartials(name: string): void {
    for (const c of [null, 'gzip', 'lz4'] as const) {
      const path = join(this.o.dir, receivedFileName(name, c, true));
      // a temporary file of an earlier run's resume goes, whatever its form
      removeIfThere(resumeTempPath(path));
      if (path === this.partialPath) continue;
      // Another form's .partial may hold WAL already reported flushed that the server has not sent
      // again yet: kept, under a name no reader takes for a segment, until this one is complete.
      try {
        renameSync(path, supersededPath(path));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('rename', path, e);
      }
    }
  }

  /** The segment `name` is complete: what removeOtherPartials kept of it goes. */
  private removeSuperseded(name: string): void {
    for (const c of [null, 'gzip', 'lz4'] as const) removeIfThere(supersededPath(join(this.o.dir, receivedFileName(name, c, true))));
  }

  private fail(e: Error): Error {
    this.failure ??= e;
    return this.failure;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }
}

/** Where removeOtherPartials keeps another form's .partial of a segment being received again. */
function supersededPath(partial: string): string {
  return `${partial}.superseded`;
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('remove', path, e);
  }
}
