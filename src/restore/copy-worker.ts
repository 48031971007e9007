// A copier thread of restore (started by copy-thread.ts): restores one file at
// a time, with synchronous system calls and one reused buffer: the stored
// bytes are read (from a local file, or handed over by the main thread when
// they come from the network), decrypted, decoded, hashed and written in one
// loop. On the main thread the same work costs a promise, a stream chunk and
// a freshly faulted-in megabyte per step, on one core; here N copiers keep N
// cores busy.
//
// The rules of file-restorer.ts hold here too: a file already at the
// destination is unlinked, never written through (it may be a link, or a hard
// link shared with another directory); the new one is created with O_EXCL and
// O_NOFOLLOW; its size and CRC-32C (its digest in older sets) are checked before
// it is reported written. A piece of a large file (copy-job.ts `piece`) is
// written into the file the main thread created, which checks it whole.

import { parentPort } from 'node:worker_threads';
import { exitOnRequest } from '../common/thread-exit.js';
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, futimesSync, lstatSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { createDigest, digestMismatch } from '../repo/backup-set/content-digest.js';
import type { ContentHash } from '../storage/filter/xxh128.js';
import { syncDecoder, UnsupportedInput } from '../storage/compress/sync-decoder.js';
import type { SyncDecoder } from '../storage/compress/sync-decoder.js';
import { CompressionError } from '../storage/compress/common.js';
import { ChunkOpener, CipherFailure } from '../storage/cipher/chunk-cipher.js';
import type { CopyJob, CopyReply, FromCopier, ToCopier } from './copy-job.js';
import { ownedHere } from './target-files.js';
import { STREAM_MODE_BITS } from '../storage/posix/exact-mode.js';
import { startWriteback, WRITE_BEHIND_STEP } from '../storage/posix/write-behind.js';
import { crc32c, crc32cText } from '../storage/filter/crc32c.js';

const CHUNK = 1 << 20;
const buffer = Buffer.allocUnsafeSlow(CHUNK);

/** A failure to report, carried out of the copy loop. */
class Failed extends Error {
  constructor(readonly reply: Omit<Extract<CopyReply, { status: 'failed' }>, 'id' | 'status'>) {
    super(reply.detail);
  }
}

/** The stored bytes are in a form the synchronous decoders do not take: the main thread restores the file. */
class Fallback extends Error {}

function system(action: string, path: string, e: unknown): Failed {
  const err = e as NodeJS.ErrnoException;
  return new Failed({ failure: 'system', action, path, detail: err.message, ...(err.code ? { code: err.code } : {}) });
}

function damaged(detail: string): Failed {
  return new Failed({ failure: 'damaged', detail });
}

/** What went wrong in decrypting or decoding, as the failure to report. */
function classify(e: unknown, job: CopyJob): Error {
  if (e instanceof Failed || e instanceof Fallback) return e;
  if (e instanceof UnsupportedInput) return new Fallback('a form the synchronous decoder does not take');
  if (e instanceof CipherFailure) return new Failed({ failure: 'undecryptable', detail: e.why });
  // What the decoders find wrong in the stored bytes is damage; anything else (memory, the
  // native library) is this machine's failure, not the repository's.
  if (e instanceof CompressionError) return damaged(e.message);
  return new Failed({ failure: 'system', action: 'decode', path: job.source ?? job.dest, detail: (e as Error).message });
}

/** One file being written: stored bytes go in, are decrypted, decoded, hashed and written; checked at the end. */
class FileSink {
  /** The digest of what is written, when the manifest records no CRC-32C (copy-job.ts). */
  private readonly hash: ContentHash | null;
  private crc = 0;
  /** Where the bytes go in dest, and how many are expected: the whole file, or a piece of it. */
  private readonly at: number;
  private readonly expected: number;
  private readonly opener: ChunkOpener | null;
  private readonly dst: number;
  private size = 0;
  /** Bytes whose writeback was started (write-behind.ts), when the file is to be synced. */
  private kicked = 0;
  private readonly emit = (out: Buffer): void => {
    const position = this.at + this.size;
    this.size += out.length;
    if (this.size > this.expected) throw damaged(`more than the ${this.expected} bytes recorded${this.where()}`);
    if (this.hash) this.hash.update(out);
    else this.crc = crc32c(out, this.crc);
    for (let off = 0; off < out.length; ) {
      try {
        off += writeSync(this.dst, out, off, out.length - off, position + off);
      } catch (e) {
        throw system('write', this.job.dest, e);
      }
    }
    if (this.job.sync && this.size - this.kicked >= WRITE_BEHIND_STEP) {
      startWriteback(this.dst, this.at + this.kicked, this.size - this.kicked);
      this.kicked = this.size;
    }
  };
  private readonly decode = (plain: Buffer): void => this.decoder.write(plain, this.emit);

  constructor(
    private readonly job: CopyJob,
    private readonly decoder: SyncDecoder,
  ) {
    // A piece is always checked by its CRC-32C: the main thread combines those of the pieces.
    this.hash = job.crc32c === null && job.piece === null ? createDigest(job.digest.algorithm) : null;
    this.at = job.piece?.at ?? 0;
    this.expected = job.piece?.length ?? job.size;
    const d = job.decrypt;
    this.opener = d ? new ChunkOpener({ dataKey: { id: Buffer.from(d.keyId), key: Buffer.from(d.key) }, path: d.path }) : null;
    if (job.piece) {
      try {
        this.dst = openSync(job.dest, constants.O_WRONLY | constants.O_NOFOLLOW);
      } catch (e) {
        throw system('open', job.dest, e);
      }
      return;
    }
    removeExisting(job.dest);
    try {
      this.dst = openSync(job.dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, job.mode & STREAM_MODE_BITS);
    } catch (e) {
      throw system('create', job.dest, e);
    }
  }

  /** For messages about a piece: which bytes of the file. */
  private where(): string {
    const p = this.job.piece;
    return p ? ` for bytes ${p.at}-${p.at + p.length - 1}` : '';
  }

  /** Stored bytes, in order; `stored` may be reused by the caller once this returns. */
  push(stored: Buffer): void {
    try {
      if (this.opener) this.opener.push(stored, this.decode);
      else this.decode(stored);
    } catch (e) {
      throw classify(e, this.job);
    }
  }

  /**
   * The stored bytes are all in: checks the file, sets its mode and time, syncs and closes it;
   * a piece is only closed, and its CRC-32C returned.
   */
  finish(): number | undefined {
    try {
      this.opener?.end(this.decode);
      this.decoder.end();
    } catch (e) {
      throw classify(e, this.job);
    }
    if (this.size !== this.expected) throw damaged(`${this.size} bytes instead of ${this.expected}${this.where()}`);
    if (this.job.piece) {
      try {
        closeSync(this.dst);
      } catch (e) {
        throw system('write', this.job.dest, e);
      }
      return this.crc;
    }
    if (this.hash) {
      const got = this.hash.digestHex();
      if (got !== this.job.digest.hex) throw damaged(digestMismatch(this.job.digest, got));
    } else if (crc32cText(this.crc) !== this.job.crc32c) throw damaged(`CRC-32C ${crc32cText(this.crc)} instead of ${this.job.crc32c}`);
    try {
      fchmodSync(this.dst, this.job.mode & STREAM_MODE_BITS);
      futimesSync(this.dst, this.job.mtime, this.job.mtime);
      if (this.job.sync) fsyncSync(this.dst);
      closeSync(this.dst);
    } catch (e) {
      throw system('write', this.job.dest, e);
    }
    return undefined;
  }

  /** A file the fallback restores again, or one left half-written by a failure, is not left behind as if whole (a piece's file: by the main thread). */
  abort(): void {
    try {
      closeSync(this.dst);
    } catch {
      // the failure being reported says why
    }
    if (!this.job.piece) unlinkQuietly(this.job.dest);
  }
}

/** Checks that come before any byte is read: delta's "already there", a form only the streaming decoders take. */
function precheck(job: CopyJob): CopyReply | SyncDecoder {
  if (job.delta && sameContent(job)) return { id: job.id, status: 'unchanged' };
  const decoder = syncDecoder(job.size === 0 ? 'none' : job.compression);
  return decoder ?? { id: job.id, status: 'fallback', why: `no synchronous ${job.compression} decoder` };
}

function failureReply(job: CopyJob, e: unknown): CopyReply {
  if (e instanceof Failed) return { id: job.id, status: 'failed', ...e.reply };
  if (e instanceof Fallback) return { id: job.id, status: 'fallback', why: e.message };
  return { id: job.id, status: 'failed', failure: 'system', detail: (e as Error).message };
}

/** A job whose stored bytes are in a local file: read here, start to end. */
function copyFromFile(job: CopyJob & { source: string }, decoder: SyncDecoder): CopyReply {
  let src: number;
  try {
    src = openSync(job.source, constants.O_RDONLY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Failed({ failure: 'missing', detail: 'missing' });
    throw system('open', job.source, e);
  }
  try {
    const sink = new FileSink(job, decoder);
    try {
      let position = job.offset;
      const end = job.length < 0 ? Infinity : job.offset + job.length;
      while (position < end) {
        let n: number;
        try {
          n = readSync(src, buffer, 0, Math.min(CHUNK, end - position), position);
        } catch (e) {
          throw system('read', job.source, e);
        }
        if (n === 0) {
          if (end !== Infinity) throw damaged(`the stored bytes end ${end - position} bytes early`);
          break;
        }
        position += n;
        sink.push(buffer.subarray(0, n));
      }
      const crc = sink.finish();
      return crc === undefined ? { id: job.id, status: 'written' } : { id: job.id, status: 'written', crc32c: crc };
    } catch (e) {
      sink.abort();
      throw e;
    }
  } finally {
    closeSync(src);
  }
}

function removeExisting(path: string): void {
  try {
    if (!lstatSync(path).isDirectory()) unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw system('remove', path, e);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone, or the failure being reported says why
  }
}

/**
 * Delta's test: a regular file (not a link) of the recorded size and digest, and of no other
 * directory: a file hard-linked elsewhere (the old cluster pg_upgrade --link left, a cp -al clone
 * of a live cluster) is written fresh even when it matches, or recovery and the server would
 * write into the other cluster's file.
 */
function sameContent(job: CopyJob): boolean {
  let fd: number;
  try {
    const st = lstatSync(job.dest);
    if (!st.isFile() || st.size !== job.size || st.nlink > 1 || !ownedHere(st.uid)) return false;
    fd = openSync(job.dest, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    const hash = createDigest(job.digest.algorithm);
    for (let n; (n = readSync(fd, buffer, 0, CHUNK, null)) > 0; ) hash.update(buffer.subarray(0, n));
    if (hash.digestHex() !== job.digest.hex) return false;
    // Kept with the recorded mode (a backup with group access over a 0700 cluster: readable to the group).
    if ((fstatSync(fd).mode & 0o7777) !== (job.mode & STREAM_MODE_BITS)) fchmodSync(fd, job.mode & STREAM_MODE_BITS);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

const post = (m: FromCopier): void => parentPort!.postMessage(m);
/** The streamed job under way; null between jobs, and after a streamed job failed (its chunks still in flight are dropped). */
let streaming: { job: CopyJob; sink: FileSink } | null = null;

exitOnRequest(parentPort!);
parentPort!.on('message', (m: ToCopier) => {
  if (m.type === 'job') {
    const job = m.job;
    try {
      const pre = precheck(job);
      if (!('write' in pre)) return post(pre);
      if (job.source !== null) return post(copyFromFile(job as CopyJob & { source: string }, pre));
      streaming = { job, sink: new FileSink(job, pre) };
      post({ id: job.id, status: 'send' });
    } catch (e) {
      post(failureReply(job, e));
    }
    return;
  }
  const s = streaming;
  if (s === null) return;
  try {
    if (m.type === 'chunk') {
      s.sink.push(Buffer.from(m.data, 0, m.length));
      parentPort!.postMessage({ id: s.job.id, status: 'ack', data: m.data } satisfies FromCopier, [m.data]);
    } else if (m.type === 'end') {
      streaming = null;
      const crc = s.sink.finish();
      post(crc === undefined ? { id: s.job.id, status: 'written' } : { id: s.job.id, status: 'written', crc32c: crc });
    } else {
      streaming = null;
      s.sink.abort();
      post({ id: s.job.id, status: 'aborted' });
    }
  } catch (e) {
    streaming = null;
    s.sink.abort();
    post(failureReply(s.job, e));
  }
});
