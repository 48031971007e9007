// Where a reader thread puts the bytes of one job (read-job.ts), chunk by chunk
// and in order: written at a local path, handed back to the main thread as read
// or compressed in the store's form (as flow credits allow), or nowhere (a check
// of a copy); with the job's checksums over what was read: the manifest's
// (CRC-32C or another) and, when the store's form is asked for, its SHA-256.
// Used by both read methods' threads (read-worker.ts, sql-read-worker.ts);
// synchronous, so a thread does one chunk's work at a time on a buffer it may
// reuse afterwards.

import { closeSync, constants, fsyncSync, openSync, writeSync } from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import type { ReadDone, ReadJob, ReadReply } from './read-job.js';
import type { SharedCounters } from './shared-counters.js';
import { createManifestChecksum, crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { crc32c } from '../../storage/filter/crc32c.js';
import { createXxh128 } from '../../storage/filter/xxh128.js';
import type { ContentHash } from '../../storage/filter/xxh128.js';
import { encoderFor } from './thread-encoders.js';
import { encodeToFit } from '../../storage/compress/sync-encoder.js';
import type { SyncEncoder } from '../../storage/compress/sync-encoder.js';
import { paddingFor } from '../../storage/tar/tar-header.js';
import { LENT } from './lent-buffers.js';
import type { LentBuffers } from './lent-buffers.js';
import { WRITE_PIECE } from '../../storage/write-piece.js';
import { WriteBehind } from '../../storage/posix/write-behind.js';
import { createExclusiveSync } from '../../storage/posix/exact-mode.js';

const REWRITE = constants.O_WRONLY | constants.O_NOFOLLOW;

/** The backup was aborted (shared flag): the thread drops the job without a reply. */
export class Aborted extends Error {}

/** A local file could not be created, written or synced. */
export class SystemFailure extends Error {
  constructor(
    readonly path: string,
    readonly action: string,
    readonly errno: NodeJS.ErrnoException,
  ) {
    super(`could not ${action} "${path}": ${errno.message}`);
  }
}

/** A job's answer when its source was gone when first opened or asked for (dropped since it was listed): the server leaves such a file out too. */
export function goneReply(id: number): ReadDone {
  return { id, kind: 'done', gone: true, length: 0, checksumHex: null, crc32c: null, xxh128: null, encodedBytes: 0, failures: [], partialPage: false };
}

/** A wholeFile job's file had another size when opened: nothing read (ReadJob.wholeFile). */
export function resizedReply(id: number, size: number): ReadDone {
  return { ...goneReply(id), gone: false, resized: size };
}


export class JobOutput {
  /** Chunks go back to the main thread as they are (then each needs a buffer of its own, or a lent one: bufferFor). */
  readonly handsBack: boolean;
  private fd: number | null = null;
  private readonly crc: boolean;
  private readonly crcIsManifest: boolean;
  private crcValue = 0;
  /** The store's digest of the bytes read (read-job.ts encode). */
  private readonly digest: ContentHash | null;
  private readonly hash: ReturnType<typeof createManifestChecksum> | null;
  private readonly encoder: SyncEncoder | null;
  private encodedBytes = 0;
  private done = 0;
  /** Where byte 0 of the source goes in the local destination. */
  private base = 0;
  /** The writeback of what the job writes locally (dest.writeBehind). */
  private behind: WriteBehind | null = null;

  constructor(
    private readonly job: ReadJob,
    private readonly port: MessagePort,
    private readonly shared: SharedCounters,
    private readonly index: number,
    /** Where the buffers of a job with `lend` come from. */
    private readonly lent: LentBuffers,
  ) {
    this.crcIsManifest = job.checksum === 'CRC32C';
    this.crc = this.crcIsManifest || job.encode?.crc32c === true;
    this.digest = job.encode && job.encode.digest !== false ? createXxh128() : null;
    this.hash = job.checksum && !this.crcIsManifest ? createManifestChecksum(job.checksum) : null;
    this.encoder = job.encode && job.encode.compression !== 'none' ? encoderFor(job.encode.compression, job.encode.level) : null;
    this.handsBack = job.dest === null && this.encoder === null && !job.discard;
  }

  /** A buffer of `length` bytes to read into, that add() may hand back as it is (a view of a lent one when the job allows). */
  bufferFor(length: number): Buffer {
    return this.job.lend && length <= LENT ? this.lent.take().subarray(0, length) : Buffer.allocUnsafeSlow(length);
  }

  /** Opens the local destination, if any: once the source is known to be there. */
  open(): void {
    const dest = this.job.dest;
    if (!dest) return;
    try {
      // Created with exactly the source's mode (the run's umask would narrow a 0644 file to 0600).
      this.fd = dest.create ? createExclusiveSync(dest.path, dest.mode) : openSync(dest.path, REWRITE);
    } catch (e) {
      throw new SystemFailure(dest.path, dest.create ? 'create' : 'open', e as NodeJS.ErrnoException);
    }
    this.base = dest.at ?? 0;
    // A member of a tar file written directly (read-job.ts): its place is reserved now that the source is known to be there.
    if (dest.tarHeader) {
      const header = dest.tarHeader;
      const at = this.shared.reserveTar(header.length + this.job.length + paddingFor(this.job.length));
      writeAt(this.fd, Buffer.from(header.buffer, header.byteOffset, header.length), at, dest.path);
      this.base = at + header.length;
    }
    this.behind = new WriteBehind(this.fd, this.base + this.job.offset, dest.writeBehind === true);
  }

  /** The next bytes of the job, in order. A chunk handed back as it is is transferred: the caller must not reuse it. */
  add(bytes: Buffer): void {
    const length = bytes.length; // before a transfer empties the buffer
    if (this.crc) this.crcValue = crc32c(bytes, this.crcValue);
    this.hash?.update(bytes);
    this.digest?.update(bytes);
    if (this.fd !== null) {
      writeAt(this.fd, bytes, this.base + this.job.offset + this.done, this.job.dest!.path);
      this.behind!.wrote(length);
    }
    else if (!this.job.discard && bytes.length > 0) {
      let give = bytes;
      if (this.encoder !== null) {
        if (this.job.lend && this.encoder.bound(bytes.length) <= LENT) {
          // Encoded into a lent buffer: it comes back once written.
          const dst = this.lent.take();
          give = dst.subarray(0, this.encoder.encode(bytes, dst, 0));
        } else give = encodeToFit(this.encoder, bytes);
      }
      this.encodedBytes += give.length;
      if (!this.shared.spend(this.index)) throw new Aborted();
      this.port.postMessage({ id: this.job.id, kind: 'chunk', data: give, read: length } satisfies ReadReply, [give.buffer as ArrayBuffer]);
    }
    this.shared.addDone(length);
    this.done += length;
  }

  /** Synced when asked, closed; the job's answer. */
  finish(failures: ReadDone['failures'], partialPage: boolean): ReadDone {
    const pad = this.job.dest?.tarHeader ? paddingFor(this.job.length) : 0;
    if (this.fd !== null && pad > 0) writeAt(this.fd, Buffer.alloc(pad), this.base + this.job.length, this.job.dest!.path);
    this.behind?.finish();
    if (this.fd !== null && this.job.dest!.sync) {
      try {
        fsyncSync(this.fd);
      } catch (e) {
        throw new SystemFailure(this.job.dest!.path, 'fsync', e as NodeJS.ErrnoException);
      }
    }
    this.close();
    const xxh128 = this.digest ? this.digest.digestHex() : null;
    const checksumHex = this.crcIsManifest ? crc32cHex(this.crcValue) : this.hash ? this.hash.digestHex() : null;
    return { id: this.job.id, kind: 'done', gone: false, length: this.done, checksumHex, crc32c: this.crc ? this.crcValue : null, xxh128, encodedBytes: this.encodedBytes, failures, partialPage };
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }
}

function writeAt(fd: number, bytes: Buffer, pos: number, path: string): void {
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(WRITE_PIECE, bytes.length - done), pos + done);
  } catch (e) {
    throw new SystemFailure(path, 'write', e as NodeJS.ErrnoException);
  }
}
