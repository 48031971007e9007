// A copier thread of restore (started by copy-thread.ts): restores one file at
// a time, with synchronous system calls and one reused buffer, reading the
// stored bytes, decoding them, hashing them and writing them in one loop. On
// the main thread the same work costs a promise, a stream chunk and a freshly
// faulted-in megabyte per step; here it is a read, a hash update and a write,
// and N copiers keep N cores busy.
//
// The rules of file-restorer.ts hold here too: a file already at the
// destination is unlinked, never written through (it may be a link, or a hard
// link shared with another directory); the new one is created with O_EXCL and
// O_NOFOLLOW; its size and SHA-256 are checked before it is reported written.

import { parentPort } from 'node:worker_threads';
import { closeSync, constants, fchmodSync, fsyncSync, futimesSync, lstatSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { syncDecoder, UnsupportedInput } from '../storage/compress/sync-decoder.js';
import { CompressionError } from '../storage/compress/common.js';
import type { CopyJob, CopyReply } from './copy-job.js';

const CHUNK = 1 << 20;
const buffer = Buffer.allocUnsafeSlow(CHUNK);

/** A failure to report, carried out of the copy loop. */
class Failed extends Error {
  constructor(readonly reply: Omit<Extract<CopyReply, { status: 'failed' }>, 'id' | 'status'>) {
    super(reply.detail);
  }
}

function system(action: string, path: string, e: unknown): Failed {
  const err = e as NodeJS.ErrnoException;
  return new Failed({ failure: 'system', action, path, detail: err.message, ...(err.code ? { code: err.code } : {}) });
}

function damaged(detail: string): Failed {
  return new Failed({ failure: 'damaged', detail });
}

function copy(job: CopyJob): CopyReply {
  if (job.delta && sameContent(job)) return { id: job.id, status: 'unchanged' };
  const decoder = syncDecoder(job.size === 0 ? 'none' : job.compression);
  if (decoder === null) return { id: job.id, status: 'fallback', why: `no synchronous ${job.compression} decoder` };
  let src: number;
  try {
    src = openSync(job.source, constants.O_RDONLY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Failed({ failure: 'missing', detail: 'missing' });
    throw system('open', job.source, e);
  }
  try {
    removeExisting(job.dest);
    let dst: number;
    try {
      dst = openSync(job.dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, job.mode & 0o7777);
    } catch (e) {
      throw system('create', job.dest, e);
    }
    let done = false;
    try {
      const written = decodeInto(job, src, dst, decoder);
      if (written === null) return { id: job.id, status: 'fallback', why: 'a form the synchronous decoder does not take' };
      try {
        fchmodSync(dst, job.mode & 0o7777);
        futimesSync(dst, job.mtime, job.mtime);
        if (job.sync) fsyncSync(dst);
      } catch (e) {
        throw system('write', job.dest, e);
      }
      done = true;
      return { id: job.id, status: 'written' };
    } finally {
      try {
        closeSync(dst);
      } catch (e) {
        if (done) throw system('write', job.dest, e); // a failure already on its way is the one to report
      } finally {
        // A file the fallback restores again, or one left half-written by a failure, is not left behind as if whole.
        if (!done) unlinkQuietly(job.dest);
      }
    }
  } finally {
    closeSync(src);
  }
}

/** Reads, decodes, hashes and writes the stored bytes; null when the decoder declines them. */
function decodeInto(job: CopyJob, src: number, dst: number, decoder: NonNullable<ReturnType<typeof syncDecoder>>): number | null {
  const hash = createHash('sha256');
  let size = 0;
  const emit = (out: Buffer): void => {
    size += out.length;
    if (size > job.size) throw damaged(`more than the ${job.size} bytes recorded`);
    hash.update(out);
    for (let off = 0; off < out.length; ) {
      try {
        off += writeSync(dst, out, off, out.length - off);
      } catch (e) {
        throw system('write', job.dest, e);
      }
    }
  };
  let position = job.offset;
  const end = job.length < 0 ? Infinity : job.offset + job.length;
  try {
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
      decoder.write(buffer.subarray(0, n), emit);
    }
    decoder.end();
  } catch (e) {
    if (e instanceof UnsupportedInput) return null;
    if (e instanceof Failed) throw e;
    // What the decoders find wrong in the stored bytes is damage; anything else (memory, the
    // native library) is this machine's failure, not the repository's.
    if (e instanceof CompressionError) throw damaged(e.message);
    throw new Failed({ failure: 'system', action: 'decode', path: job.source, detail: (e as Error).message });
  }
  const digest = hash.digest('hex');
  if (size !== job.size) throw damaged(`${size} bytes instead of ${job.size}`);
  if (digest !== job.sha256) throw damaged(`SHA-256 ${digest} instead of ${job.sha256}`);
  return size;
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

/** Delta's test: a regular file (not a link) of the recorded size and SHA-256. */
function sameContent(job: CopyJob): boolean {
  let fd: number;
  try {
    const st = lstatSync(job.dest);
    if (!st.isFile() || st.size !== job.size) return false;
    fd = openSync(job.dest, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    const hash = createHash('sha256');
    for (let n; (n = readSync(fd, buffer, 0, CHUNK, null)) > 0; ) hash.update(buffer.subarray(0, n));
    return hash.digest('hex') === job.sha256;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

parentPort!.on('message', (job: CopyJob) => {
  let reply: CopyReply;
  try {
    reply = copy(job);
  } catch (e) {
    reply = e instanceof Failed ? { id: job.id, status: 'failed', ...e.reply } : { id: job.id, status: 'failed', failure: 'system', detail: (e as Error).message };
  }
  parentPort!.postMessage(reply);
});
