// A reader thread of the sql read method (sql-read-pool.ts starts them): one
// connection of its own to the server, opened when the thread starts, over
// which it reads the server's files through pg_read_binary_file in 1 MiB
// chunks (sql-file-read.ts), one job at a time. Like the direct method's
// threads (read-worker.ts) it verifies each page's checksum with the server's
// rule (a failing page is read once more: a concurrent write may have torn it),
// computes the job's checksums and writes the bytes to a local file or hands
// them back, compressed when asked (job-output.ts); flow credits, the rate
// budget, the bytes done and the abort flag are shared (shared-counters.ts).
//
// Doing this on threads rather than on the main thread is what makes the method
// fast: receiving, verifying and writing 1.5 GB cost ~4.5 s of CPU on one
// thread, which also did the sink's work. The next chunk is asked for before the
// one received is verified and written, so the server reads it meanwhile.
//
// Besides jobs, the main thread may ask for the listing (through this thread's
// connection: no connection more than -j) and for a clean close.

import { parentPort, workerData } from 'node:worker_threads';
import type { ReadJob, ReadReply } from './read-job.js';
import type { ChecksumFailure } from './read-job.js';
import { SharedCounters } from './shared-counters.js';
import type { SharedCounterBuffers } from './shared-counters.js';
import { Session } from '../../protocol/session.js';
import { LIFT_TIMEOUTS_SQL } from '../../protocol/session-timeouts.js';
import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { PAGE_SIZE, verifyPage } from '../../postgres/page-checksum.js';
import { verifyWithReread } from './page-reread.js';
import { readServerFileChunk, receiveChunk, sendChunkQuery } from './sql-file-read.js';
import { listDataDirectoryBySql } from './sql-listing.js';
import type { SqlListingOptions } from './sql-listing.js';
import { Aborted, goneReply, JobOutput, SystemFailure } from './job-output.js';
import { isPgpitrError, PgpitrError } from '../../common/errors.js';
import type { SqlWorkerReply, SqlWorkerRequest } from './sql-worker-messages.js';
import { LentBuffers } from './lent-buffers.js';
import { exitOnRequest } from '../../common/thread-exit.js';
import type { MessagePort } from 'node:worker_threads';

export interface SqlWorkerData {
  index: number;
  buffers: SharedCounterBuffers;
  connection: ConnectionSettings;
  label: string;
  /** Where the main thread gives lent buffers back (read-pool.ts). */
  returns: MessagePort;
}

const CHUNK = 1024 * 1024;
const { index, buffers, connection, label, returns } = workerData as SqlWorkerData;
const shared = new SharedCounters(buffers);
const port = parentPort!;
exitOnRequest(port);
/** Two reused buffers for jobs whose bytes stay here: the chunk being worked on, and the next one. */
const own = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)];
const reread = Buffer.allocUnsafeSlow(PAGE_SIZE);
/** Buffers lent to the main thread with the chunks of a job with `lend` (lent-buffers.ts). */
const lent = new LentBuffers(returns);

const LOST_HINT = 'a backup reader connection ended: the server may have been stopped or restarted, or the connection terminated (pg_terminate_backend); check the server log, then run the backup again';

const opening = Session.open(connection, 'none', label).then(async (s) => {
  await s.query(LIFT_TIMEOUTS_SQL);
  return s;
});
opening.then(
  () => reply({ id: -1, kind: 'opened' }),
  (e) => reply(failure(-1, e, '')),
);
// One request at a time, in the order they came.
let busy: Promise<unknown> = opening.catch(() => {});
port.on('message', (m: SqlWorkerRequest | ReadJob) => {
  busy = busy.then(() => handle(m));
});

function reply(m: SqlWorkerReply | ReadReply): void {
  port.postMessage(m);
}

async function handle(m: SqlWorkerRequest | ReadJob): Promise<void> {
  const session = await opening.catch(() => null);
  if ('source' in m) {
    if (session === null) return reply(failure(m.id, new PgpitrError('ERR_CONNECTION_LOST', `${label}: not connected`), m.source));
    try {
      reply(await run(session, m));
    } catch (e) {
      if (e instanceof Aborted) return;
      reply(failure(m.id, e, m.source));
    }
    return;
  }
  if (m.kind === 'list') {
    if (session === null) return;
    try {
      reply({ id: -1, kind: 'listed', listing: await listDataDirectoryBySql(session, m.options as SqlListingOptions) });
    } catch (e) {
      reply(failure(-1, e, ''));
    }
    return;
  }
  session?.close();
  reply({ id: -1, kind: 'closed' });
}

/** The job's bytes, chunk by chunk; the next chunk is asked for before this one is verified and used. */
async function run(session: Session, job: ReadJob): Promise<ReadReply> {
  const out = new JobOutput(job, port, shared, index, lent);
  try {
    const chunks = Math.max(1, Math.ceil(job.length / CHUNK));
    const want = (i: number) => Math.min(CHUNK, job.length - i * CHUNK);
    // Handed back as read: a lent buffer or one of its own (transferred); else one of the two reused ones.
    const bufferFor = (i: number) => (out.handsBack ? out.bufferFor(want(i)) : own[i & 1]!);
    const ask = (i: number) => {
      if (!shared.take(want(i))) throw new Aborted();
      sendChunkQuery(session, job.source, job.offset + i * CHUNK, want(i));
    };
    const failures: ChecksumFailure[] = [];
    const startLsn = job.verify ? BigInt(job.verify.startLsn) : 0n;
    let verifying = job.verify !== null;
    let partialPage = false;
    // The next chunk's answer when it had to be taken early (a page read again needs the connection).
    let ahead: { buf: Buffer; got: number | null } | null = null;
    let asked = false;
    ask(0);
    for (let i = 0; i < chunks; i++) {
      let buf: Buffer;
      let got: number | null;
      if (ahead) ({ buf, got } = ahead);
      else {
        buf = bufferFor(i);
        got = await receiveChunk(session, buf, job.source);
      }
      ahead = null;
      asked = false;
      if (got === null && i === 0) {
        // Gone when first asked for: left out, as the server leaves out a file dropped since it was listed.
        return goneReply(job.id);
      }
      if (i === 0) out.open();
      if (i + 1 < chunks) {
        ask(i + 1);
        asked = true;
      }
      const w = want(i);
      // Shrank since it was listed (or dropped midway): zeros up to the listed size, as the server sends.
      const read = got ?? 0;
      if (read < w) buf.fill(0, read, w);
      const bytes = buf.subarray(0, w);
      if (verifying && read > 0) {
        if (read % PAGE_SIZE !== 0) {
          partialPage = true;
          verifying = false;
        }
        const base = job.verify!.blockBase + (job.offset + i * CHUNK) / PAGE_SIZE;
        for (let p = 0; p + PAGE_SIZE <= read; p += PAGE_SIZE) {
          const page = bytes.subarray(p, p + PAGE_SIZE);
          if (typeof verifyPage(page, base + p / PAGE_SIZE, startLsn) === 'string') continue;
          // The connection is needed to read the page again: the next chunk's answer is taken first.
          if (asked) {
            const next = bufferFor(i + 1);
            ahead = { buf: next, got: await receiveChunk(session, next, job.source) };
            asked = false;
          }
          const position = job.offset + i * CHUNK + p;
          const n = await readServerFileChunk(session, reread, job.source, position, PAGE_SIZE);
          // NULL: dropped since; 0: truncated before the block (page-reread.ts: no failure).
          const again = n === PAGE_SIZE ? reread : n === null || n === 0 ? ('gone' as const) : null;
          const failed = verifyWithReread(page, base + p / PAGE_SIZE, startLsn, () => again);
          if (failed) failures.push(failed);
        }
      }
      out.add(bytes);
    }
    return out.finish(failures, partialPage);
  } finally {
    out.close();
  }
}

function failure(id: number, e: unknown, path: string): Extract<ReadReply, { kind: 'failed' }> {
  if (e instanceof SystemFailure) return { id, kind: 'failed', message: e.message, path: e.path, code: e.errno.code };
  if (isPgpitrError(e)) {
    const lost = e.code === 'ERR_CONNECTION_LOST' && e.hint === undefined;
    return { id, kind: 'failed', message: e.message, path, error: { code: e.code, hint: lost ? LOST_HINT : e.hint, detail: e.detail } };
  }
  const message = `a backup reader connection failed while reading "${path}": ${(e as Error).message}`;
  return { id, kind: 'failed', message, path, error: { code: 'ERR_CONNECTION_LOST', hint: LOST_HINT } };
}
