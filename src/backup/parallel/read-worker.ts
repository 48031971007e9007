// A reader thread of a parallel backup (read-pool.ts starts them). One job at a
// time, synchronously: read the file in 1 MiB chunks, verify each page's
// checksum as the server does for BASE_BACKUP (a page that fails is read again
// once: a concurrent write may have torn it; a new page or one changed since the
// backup started is not checked), compute the backup_manifest checksum, and
// either write the bytes to a local file or hand them back to the main thread
// as flow credits allow (job-output.ts, shared with the sql method's threads).
// All workers of a backup share one rate budget, one count of bytes done and
// one abort flag (shared-counters.ts).

import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { ChecksumFailure, ReadJob, ReadReply } from './read-job.js';
import { SharedCounters } from './shared-counters.js';
import type { SharedCounterBuffers } from './shared-counters.js';
import { verifyWithReread } from './page-reread.js';
import { pageArena } from '../../postgres/page-checksum-simd.js';
import { Aborted, goneReply, JobOutput, resizedReply, SystemFailure } from './job-output.js';
import { LentBuffers } from './lent-buffers.js';
import { exitOnRequest } from '../../common/thread-exit.js';

const CHUNK = 1024 * 1024;
const PAGE = 8192;

const { index, buffers, returns } = workerData as { index: number; buffers: SharedCounterBuffers; returns: MessagePort };
const shared = new SharedCounters(buffers);
const port = parentPort!;
exitOnRequest(port);
/**
 * The buffer a job whose bytes stay here (written locally, compressed, checked) reads into, reused:
 * a fresh 1 MiB per chunk costs page faults. It lives in the page checksum's own memory when it
 * can: pages are then checked where they were read.
 */
const own = pageArena(CHUNK) ?? Buffer.allocUnsafeSlow(CHUNK);
const reread = Buffer.allocUnsafeSlow(PAGE);
/** Buffers lent to the main thread with the chunks of a job with `lend` (lent-buffers.ts). */
const lent = new LentBuffers(returns);

port.on('message', (job: ReadJob) => {
  let reply: ReadReply;
  try {
    reply = run(job);
  } catch (e) {
    if (e instanceof Aborted) return;
    if (e instanceof SystemFailure) reply = { id: job.id, kind: 'failed', message: e.message, path: e.path, code: e.errno.code };
    else reply = { id: job.id, kind: 'failed', message: (e as Error).message, path: job.source };
  }
  port.postMessage(reply);
});

function run(job: ReadJob): ReadReply {
  let fd: number;
  try {
    fd = openSync(job.source, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    // Dropped since it was listed: the server leaves such a file out of its backup too.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return goneReply(job.id);
    throw new SystemFailure(job.source, 'open', e as NodeJS.ErrnoException);
  }
  // Rewritten since its size was looked at (postgresql.auto.conf by ALTER SYSTEM, replaced by a
  // rename): copied to the old size it would be cut or padded; the caller looks again.
  if (job.wholeFile) {
    let size: number;
    try {
      size = fstatSync(fd).size;
    } catch (e) {
      closeSync(fd);
      throw new SystemFailure(job.source, 'stat', e as NodeJS.ErrnoException);
    }
    if (size !== job.length) {
      closeSync(fd);
      return resizedReply(job.id, size);
    }
  }
  const out = new JobOutput(job, port, shared, index, lent);
  try {
    out.open();
    const failures: ChecksumFailure[] = [];
    const startLsn = job.verify ? BigInt(job.verify.startLsn) : 0n;
    let partialPage = false;
    let verifying = job.verify !== null;
    let done = 0;
    let eof = false;
    while (done < job.length) {
      const want = Math.min(CHUNK, job.length - done);
      if (!shared.take(want)) throw new Aborted();
      // Handed back as read: a buffer of its own (transferred) or a lent one; else the reused one.
      const buf = out.handsBack ? out.bufferFor(want) : own;
      let got = 0;
      while (!eof && got < want) {
        const n = readAt(fd, buf, got, want - got, job.offset + done + got, job.source);
        if (n === 0) eof = true;
        got += n;
      }
      // A file that shrank since it was listed: zeros, as the server sends.
      if (got < want) buf.fill(0, got, want);
      if (verifying) {
        if (got % PAGE !== 0) {
          partialPage = true;
          verifying = false;
        }
        const base = job.verify!.blockBase + (job.offset + done) / PAGE;
        for (let p = 0; p + PAGE <= got; p += PAGE) checkPage(fd, buf, p, base + p / PAGE, job.offset + done + p, startLsn, failures, job.source);
      }
      out.add(buf.subarray(0, want));
      done += want;
    }
    return out.finish(failures, partialPage);
  } finally {
    closeSync(fd);
    out.close();
  }
}

/**
 * The server's rule (basebackup.c): a page that fails is read again once, since a
 * concurrent write may have torn it (we read its first half before the server
 * wrote it, its second after); what is sent is the page as read the second time.
 */
function checkPage(fd: number, buf: Buffer, at: number, block: number, position: number, startLsn: bigint, failures: ChecksumFailure[], path: string): void {
  const failure = verifyWithReread(buf.subarray(at, at + PAGE), block, startLsn, () => {
    let n = 0;
    while (n < PAGE) {
      const m = readAt(fd, reread, n, PAGE - n, position + n, path);
      if (m === 0) break;
      n += m;
    }
    return n === PAGE ? reread : n === 0 ? 'gone' : null;
  });
  if (failure) failures.push(failure);
}

function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number, path: string): number {
  try {
    return readSync(fd, buf, off, len, pos);
  } catch (e) {
    throw new SystemFailure(path, 'read', e as NodeJS.ErrnoException);
  }
}
