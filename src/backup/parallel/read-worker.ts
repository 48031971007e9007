// A reader thread of a parallel backup (read-pool.ts starts them). One job at a
// time, synchronously: read the file in 1 MiB chunks, verify each page's
// checksum as the server does for BASE_BACKUP (a page that fails is read again
// once: a concurrent write may have torn it; a new page or one changed since the
// backup started is not checked), compute the backup_manifest checksum, and
// either write the bytes to a local file (in pieces of WRITE_PIECE) or hand them
// back to the main thread as flow credits allow. All workers of a backup share
// one rate budget, one count of bytes done and one abort flag (shared-counters.ts).

import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { closeSync, constants, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { WRITE_PIECE } from '../../storage/write-piece.js';
import type { ChecksumFailure, ReadJob, ReadReply } from './read-job.js';
import { SharedCounters } from './shared-counters.js';
import type { SharedCounterBuffers } from './shared-counters.js';
import { verifyWithReread } from './page-reread.js';
import { pageArena } from '../../postgres/page-checksum-simd.js';
import { createManifestChecksum, crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { crc32c } from '../../storage/filter/crc32c.js';
import { createHash } from 'node:crypto';
import { encoderFor } from './thread-encoders.js';
import { paddingFor } from '../../storage/tar/tar-header.js';
import { LENT, LentBuffers } from './lent-buffers.js';

const CHUNK = 1024 * 1024;
const PAGE = 8192;
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const REWRITE = constants.O_WRONLY | constants.O_NOFOLLOW;

const { index, buffers, returns } = workerData as { index: number; buffers: SharedCounterBuffers; returns: MessagePort };
const shared = new SharedCounters(buffers);
const port = parentPort!;
/**
 * The buffer a job that writes locally reads into, reused: a fresh 1 MiB per chunk costs page faults.
 * It lives in the page checksum's own memory when it can: pages are then checked where they were read.
 */
const own = pageArena(CHUNK) ?? Buffer.allocUnsafeSlow(CHUNK);
const reread = Buffer.allocUnsafeSlow(PAGE);
/** Buffers lent to the main thread with the chunks of a job with `lend` (lent-buffers.ts). */
const lent = new LentBuffers(returns);
/** Where a chunk is compressed before its bytes are copied out. */
let scratch = Buffer.allocUnsafeSlow(0);

class Aborted extends Error {}

class SystemFailure extends Error {
  constructor(
    readonly path: string,
    readonly action: string,
    readonly errno: NodeJS.ErrnoException,
  ) {
    super(`could not ${action} "${path}": ${errno.message}`);
  }
}

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
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { id: job.id, kind: 'done', gone: true, length: 0, checksumHex: null, crc32c: null, sha256: null, encodedBytes: 0, failures: [], partialPage: false };
    throw new SystemFailure(job.source, 'open', e as NodeJS.ErrnoException);
  }
  let out: number | null = null;
  try {
    // Where byte 0 of the source goes in the destination.
    let base = job.dest?.at ?? 0;
    if (job.dest) {
      out = openDest(job.dest);
      // A member of a tar file written directly: its place is reserved now that the source is known to be there.
      if (job.dest.tarHeader) {
        const header = job.dest.tarHeader;
        const at = shared.reserveTar(header.length + job.length + paddingFor(job.length));
        writeAt(out, Buffer.from(header.buffer, header.byteOffset, header.length), at, job.dest.path);
        base = at + header.length;
      }
    }
    const crcIsManifest = job.checksum === 'CRC32C';
    const crc = crcIsManifest || job.encode?.crc32c === true;
    let crcValue = 0;
    const sha = job.encode && job.encode.sha256 !== false ? createHash('sha256') : null;
    // The store's SHA-256 serves as the manifest's checksum when that is SHA-256 too: one pass, not two.
    const shaIsManifest = sha !== null && job.checksum === 'SHA256';
    const hash = job.checksum && !crcIsManifest && !shaIsManifest ? createManifestChecksum(job.checksum) : null;
    const failures: ChecksumFailure[] = [];
    const startLsn = job.verify ? BigInt(job.verify.startLsn) : 0n;
    const encoder = job.encode && job.encode.compression !== 'none' ? encoderFor(job.encode.compression, job.encode.level) : null;
    let encodedBytes = 0;
    let partialPage = false;
    let verifying = job.verify !== null;
    let done = 0;
    let eof = false;
    while (done < job.length) {
      const want = Math.min(CHUNK, job.length - done);
      if (!shared.take(want)) throw new Aborted();
      // Handed back as read: a buffer of its own (transferred), a lent one when the job allows;
      // written or encoded here: the reused one.
      const handsBack = out === null && encoder === null && !job.discard;
      const buf = !handsBack ? own : job.lend ? lent.take() : Buffer.allocUnsafeSlow(want);
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
      const bytes = buf.subarray(0, want);
      if (crc) crcValue = crc32c(bytes, crcValue);
      hash?.update(bytes);
      sha?.update(bytes);
      if (out !== null) writeAt(out, bytes, base + job.offset + done, job.dest!.path);
      else if (!job.discard) {
        let give = bytes;
        if (encoder !== null) {
          const need = encoder.bound(bytes.length);
          if (job.lend && need <= LENT) {
            // Encoded into a lent buffer: it comes back once written.
            const dst = lent.take();
            give = dst.subarray(0, encoder.encode(bytes, dst, 0));
          } else {
            // Encoded into a reused scratch buffer, handed on in one of its exact size: a worst-case
            // buffer per chunk, transferred, is external memory the main thread's collector must chase.
            if (scratch.length < need) scratch = Buffer.allocUnsafeSlow(need);
            const n = encoder.encode(bytes, scratch, 0);
            give = Buffer.allocUnsafeSlow(n);
            scratch.copy(give, 0, 0, n);
          }
        }
        encodedBytes += give.length;
        if (!shared.spend(index)) throw new Aborted();
        port.postMessage({ id: job.id, kind: 'chunk', data: give, read: want } satisfies ReadReply, [give.buffer as ArrayBuffer]);
      }
      shared.addDone(want);
      done += want;
    }
    const pad = out !== null && job.dest!.tarHeader ? paddingFor(job.length) : 0;
    if (pad > 0) writeAt(out!, Buffer.alloc(pad), base + job.length, job.dest!.path);
    if (out !== null && job.dest!.sync) syncFile(out, job.dest!.path);
    const sha256 = sha ? sha.digest('hex') : null;
    const checksumHex = crcIsManifest ? crc32cHex(crcValue) : shaIsManifest ? sha256 : hash ? hash.digestHex() : null;
    return { id: job.id, kind: 'done', gone: false, length: done, checksumHex, crc32c: crc ? crcValue : null, sha256, encodedBytes, failures, partialPage };
  } finally {
    closeSync(fd);
    if (out !== null) closeSync(out);
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
    return n === PAGE ? reread : null;
  });
  if (failure) failures.push(failure);
}

function openDest(dest: NonNullable<ReadJob['dest']>): number {
  try {
    return openSync(dest.path, dest.create ? CREATE : REWRITE, dest.mode);
  } catch (e) {
    throw new SystemFailure(dest.path, dest.create ? 'create' : 'open', e as NodeJS.ErrnoException);
  }
}

function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number, path: string): number {
  try {
    return readSync(fd, buf, off, len, pos);
  } catch (e) {
    throw new SystemFailure(path, 'read', e as NodeJS.ErrnoException);
  }
}

function syncFile(fd: number, path: string): void {
  try {
    fsyncSync(fd);
  } catch (e) {
    throw new SystemFailure(path, 'fsync', e as NodeJS.ErrnoException);
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
