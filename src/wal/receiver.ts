// receive-wal's engine (pg_receivewal's job): stream WAL from a server into
// segment files, follow timeline switches (fetching history files), reconnect
// after a lost connection, stop at an end position or on a signal. In
// repository mode each completed segment goes into the stanza's archive.

import { existsSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Session, quoteIdent } from '../protocol/session.js';
import { WalStream } from '../protocol/wal-stream.js';
import type { ConnectionSettings } from '../protocol/conninfo.js';
import { parseLsn, formatLsn, segmentNumber, segmentStart, timelineHistoryFileName } from '../postgres/lsn.js';
import { parseSizeSetting } from '../postgres/settings.js';
import { PgpitrError, ServerError, storageError } from '../common/errors.js';
import { SegmentFiles } from './segment-files.js';
import { StoreQueue } from './store-queue.js';
import { lowerBackgroundThreadsPriority } from './background-priority.js';
import { onBranch, resumeFromNames, resumeOnBranch, namesIn } from './start-position.js';
import { refuseOtherSystem } from './received-system.js';
import { parseTimelineHistory, timelineBranch } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import { completeInterruptedSegments } from './interrupted-segments.js';
import type { ResumePoint } from './start-position.js';
import type { WriterCompression } from './segment-writer.js';
import { makeDirsSync, writeFileAtomicSync } from '../storage/durable.js';
import type { ServerIdentity } from '../repo/stanza-match.js';

const STORE_CONCURRENCY = 1;
/**
 * Completed segments waiting to be stored before the stream slows down: 512 MiB of
 * 16 MiB segments on local disk (pg_receivewal keeps every segment). Storing runs at
 * a lower CPU priority (background-priority.ts), so it may lag behind for a while
 * when the machine is busy; this absorbs that.
 */
const STORE_MAX_WAITING = 32;

export interface ReceiveOptions {
  connection: ConnectionSettings;
  dir: string;
  slot?: string | undefined;
  endPosition?: bigint | undefined;
  noLoop: boolean;
  sync: boolean;
  synchronous: boolean;
  /** -Z: write segments compressed (.gz / .lz4), as pg_receivewal 15+. */
  compression?: WriterCompression | null | undefined;
  statusIntervalMs: number;
  reconnectDelayMs: number;
  /** Repository mode: where completed segments and history files go. */
  archive?: {
    /** Refuses (ERR_TARGET) a server of another database system than the stanza's. */
    checkSystem(server: ServerIdentity): Promise<void>;
    push(path: string): Promise<void>;
    /** Names already archived (to resume after them). */
    names(): Promise<string[]>;
  } | undefined;
  log(message: string): void;
  signal: AbortSignal;
}

export async function receiveWal(o: ReceiveOptions): Promise<void> {
  try {
    // Its entry synced too (with --synchronous, what is acknowledged must survive a power loss).
    makeDirsSync(o.dir, 0o700, o.sync);
  } catch (e) {
    throw storageError('create directory', o.dir, e);
  }
  // One receiver per directory: two would write the same .partial, and one pointed at another
  // server of the system (a promoted copy) would mix its WAL in (pg_receivewal has no such lock).
  const { holdReceiverLock } = await import('./receiver-lock.js');
  const release = await holdReceiverLock(o.dir);
  const storeQueue = o.archive ? storeQueueFor(o) : null;
  try {
    await receiveLoop(o, storeQueue);
  } finally {
    storeQueue?.stop();
    await release();
  }
}

/**
 * Repository mode: complete segments are stored in the background, one at a time, by threads at
 * a lower CPU priority than the stream's. One compression at a time keeps up with a server's WAL
 * (zstd compresses a segment in ~50 ms) while leaving the CPUs to the stream and to the server:
 * measured beside a busy primary on 2 cores, two at once doubled the p95 lag, and the lower
 * priority took it from above to below one segment (bench/archive-async.mjs). A repository that
 * fails is tried again, every segment in order, while streaming goes on (received WAL waits in the
 * directory, up to STORE_MAX_WAITING segments); with --no-loop the command fails instead.
 */
function storeQueueFor(o: ReceiveOptions): StoreQueue {
  let lowered = false;
  const retry = o.noLoop ? null : {
    delayMs: (attempt: number) => Math.min(60_000, 1000 * 2 ** (attempt - 1)),
    // Refused for good (already archived with other content, another system's stanza, no permission): said and stopped, as before.
    final: (e: Error) => e instanceof PgpitrError && (e.code === 'ERR_TARGET' || e.code === 'ERR_USAGE' || e.code === 'ERR_CHECK'),
    failed: (path: string, e: Error, delayMs: number) => o.log(`warning: could not store ${basename(path)} in the repository: ${e.message}; trying again in ${Math.round(delayMs / 1000)}s (received WAL waits in ${o.dir}; streaming goes on while fewer than ${STORE_MAX_WAITING} segments wait)`),
  };
  return new StoreQueue(async (path) => {
    // Gone: stored and removed already (queued again by a reconnection's look at the directory
    // just as its store finished). Only this function removes a completed file.
    if (!existsSync(path)) return;
    if (!lowered) {
      // Here the thread pool surely exists (the stream's fsyncs use it).
      lowerBackgroundThreadsPriority();
      lowered = true;
    }
    await o.archive!.push(path);
    unlinkSync(path);
  }, STORE_CONCURRENCY, STORE_MAX_WAITING, retry, o.signal);
}

async function receiveLoop(o: ReceiveOptions, storeQueue: StoreQueue | null): Promise<void> {
  let connectedOnce = false;
  for (;;) {
    if (o.signal.aborted) return;
    let session: Session | null = null;
    try {
      session = await Session.open(o.connection, 'physical', 'WAL streaming connection');
      connectedOnce = true;
      const finished = await streamOnce(session, o, storeQueue);
      if (finished) return;
    } catch (e) {
      // After a connection lost, the old walsender may hold the slot until wal_sender_timeout
      // ends it (55006 object in use): that clears on its own, as pg_receivewal's loop expects.
      const slotBusy = e instanceof ServerError && e.sqlState === '55006';
      // An upstream standby restarted has not yet replayed up to where this receiver resumes (a
      // delayed standby for hours): it catches up, as pg_receivewal's loop expects.
      const behind = e instanceof UpstreamBehind || (e instanceof ServerError && /requested starting point .* is ahead of the WAL flush position/.test(e.message));
      const lost = e instanceof PgpitrError && (e.code === 'ERR_CONNECTION' || e.code === 'ERR_CONNECTION_LOST') && !(e instanceof RepositoryUnavailable);
      const repository = e instanceof RepositoryUnavailable;
      const retryable = slotBusy || behind || lost || repository;
      // Told to stop: what would have been tried again is expected; anything else (the last fsync, a rename) is not, and is said.
      if (o.signal.aborted) {
        if (retryable) return;
        throw e;
      }
      if (!retryable || o.noLoop || !connectedOnce) throw walRemoved(slotMissing(e, o.slot), o.dir, o.slot, o.archive !== undefined);
      // Said whatever the verbosity (pg_receivewal too): a password changed or max_wal_senders
      // reached would otherwise stop the archiving without a word.
      const busyHint = behind ? ' (the server, a standby, has not replayed that far yet)' : slotBusy ? ' (a walsender of a lost connection lets go of it within wal_sender_timeout; if it does not, another receiver uses the slot: stop it, or give this one its own slot with -S)' : '';
      o.log(`warning: ${lost ? 'connection lost: ' : ''}${(e as Error).message}; retrying in ${o.reconnectDelayMs / 1000}s${busyHint}`);
    } finally {
      session?.abort();
    }
    await sleep(o.reconnectDelayMs, o.signal);
  }
}

/**
 * Repository mode stores plain segments: ones a -Z run (pgpitr's or pg_receivewal's) left
 * compressed in the directory would count as received, and be stored by nothing: a gap.
 */
function refuseCompressedLeftovers(dir: string, names: string[]): void {
  const compressed = names.filter((n) => /^[0-9A-F]{24}\.(gz|lz4|zst)(\.partial)?$/.test(n)).sort();
  if (compressed.length === 0) return;
  throw new PgpitrError('ERR_TARGET', `${dir} holds compressed WAL (${compressed[0]}${compressed.length > 1 ? ` and ${compressed.length - 1} more` : ''}), left by receive-wal -Z or pg_receivewal: repository mode stores only what it receives itself, and would resume after them without storing them`, {
    hint: 'decompress them into the directory (or archive them with pgpitr archive-push after decompressing), then remove the compressed files; or give repository mode a directory of its own (-D)',
  });
}

/** The server's WAL ends before where this receiver resumes. */
class UpstreamBehind extends PgpitrError {
  constructor(start: bigint, serverPos: bigint) {
    super('ERR_SERVER', `the server's WAL ends at ${formatLsn(serverPos)}, before ${formatLsn(start)} where streaming resumes`);
  }
}

/** The repository could not be read while connecting (down, a mount gone): tried again, as a lost connection. */
class RepositoryUnavailable extends PgpitrError {}

/** What the repository answers, its outage a RepositoryUnavailable (another system's stanza, a stanza deleted: as they are). */
async function fromRepository<T>(ask: () => Promise<T>): Promise<T> {
  try {
    return await ask();
  } catch (e) {
    if (e instanceof PgpitrError && (e.code === 'ERR_STORAGE' || e.code === 'ERR_CONNECTION' || e.code === 'ERR_CONNECTION_LOST')) {
      throw new RepositoryUnavailable(e.code, `the repository cannot be read: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** One connection's worth of streaming; true when the end position was reached. */
async function streamOnce(session: Session, o: ReceiveOptions, storeQueue: StoreQueue | null): Promise<boolean> {
  const ident = (await session.query('IDENTIFY_SYSTEM'))[0]!.rows[0]!;
  const segmentSize = parseSizeSetting((await session.query('SHOW wal_segment_size'))[0]!.rows[0]![0] ?? '16MB');
  // Repository mode: the server must be the stanza's cluster (its system, version and segment size), on every connection (a virtual IP moved).
  if (o.archive) await fromRepository(() => o.archive!.checkSystem({ systemIdentifier: ident[0] ?? '', major: Math.floor(session.serverVersionNum / 10000), walSegmentSize: segmentSize }));
  const serverTimeline = Number(ident[1]);
  const serverPos = parseLsn(ident[2] ?? '0/0');

  // The directory read before the archive is listed: a segment the store queue stores and removes
  // in between is then seen in one or the other.
  const local = namesIn(o.dir);
  if (o.archive) refuseCompressedLeftovers(o.dir, local);
  else refuseOtherSystem(o.dir, local, ident[0] ?? '', segmentSize);
  const archived = o.archive ? await fromRepository(() => o.archive!.names()) : [];
  completeInterruptedSegments(o.dir, namesIn(o.dir), archived, segmentSize, o.sync, o.log);
  // Only what is on the server's history is resumed after (see start-position.ts onBranch).
  const branch = await serverBranch(session, serverTimeline);
  const received = [...new Set([...local, ...namesIn(o.dir), ...archived])];
  let resume: ResumePoint | null = resumeFromNames(branch ? onBranch(received, branch, segmentSize) : received, segmentSize);
  if (resume && branch) resume = resumeOnBranch(resume, branch, segmentSize);
  if (!resume && o.slot && session.serverVersionNum >= 150000) {
    const row = (await session.query(`READ_REPLICATION_SLOT ${quoteIdent(o.slot)}`))[0]?.rows[0];
    if (row && row[1]) resume = { start: segmentStart(segmentNumber(parseLsn(row[1]), segmentSize), segmentSize), timeline: Number(row[2] ?? serverTimeline) };
  }
  resume ??= { start: segmentStart(segmentNumber(serverPos, segmentSize), segmentSize), timeline: serverTimeline };

  // Repository mode: complete segments left by an earlier run (stopped before it could store
  // them), or not stored yet by this one, go first (a file queued already is not queued again);
  // history files too, each sorting before its timeline's segments.
  if (storeQueue) {
    for (const name of namesIn(o.dir).filter((n) => /^[0-9A-F]{24}$/.test(n) || /^[0-9A-F]{8}\.history$/.test(n)).sort()) await storeQueue.add(join(o.dir, name));
  }
  // A server that has not got that far (an upstream standby restarted behind this receiver) would
  // refuse START_REPLICATION in words of its own language: seen here, and waited for.
  if (resume.timeline === serverTimeline && resume.start > serverPos) throw new UpstreamBehind(resume.start, serverPos);
  return await streamTimelines(session, o, resume, segmentSize, storeQueue, archived);
}

/** The server's branch (its timeline's history); null when the server has no history file for it (a standby restored from an archive). */
async function serverBranch(session: Session, timeline: number): Promise<TimelineBranch | null> {
  if (timeline === 1) return timelineBranch(1, []);
  try {
    const row = (await session.queryBytes(`TIMELINE_HISTORY ${timeline}`))[0]!.rows[0]!;
    return timelineBranch(timeline, parseTimelineHistory(Buffer.from(row[1] ?? '', 'latin1').toString('utf8'), timelineHistoryFileName(timeline)));
  } catch (e) {
    if (e instanceof ServerError && e.sqlState === '58P01') return null;
    throw e;
  }
}

/**
 * Whether the history file of `timeline` is in the directory, or, in repository mode, in the
 * archive: there a local copy is one whose storing failed (it is stored with the leftovers).
 */
function historyPresent(o: ReceiveOptions, timeline: number, archived: readonly string[]): boolean {
  const name = timelineHistoryFileName(timeline);
  return archived.includes(name) || existsSync(join(o.dir, name));
}

/**
 * TIMELINE_HISTORY, written under the name pgpitr computes (not one the server gives), whole and
 * synced before a segment of that timeline is; in repository mode then queued for storing, before
 * the timeline's segments (the queue stores in order).
 */
async function fetchHistory(session: Session, o: ReceiveOptions, timeline: number, storeQueue: StoreQueue | null): Promise<void> {
  // The file's bytes as the server has them (a restore point's name in the server's encoding, not UTF-8,
  // is kept as it is: archive_command pushing the server's own copy finds the same content).
  const hist = (await session.queryBytes(`TIMELINE_HISTORY ${timeline}`))[0]!.rows[0]!;
  const histPath = join(o.dir, timelineHistoryFileName(timeline));
  try {
    writeFileAtomicSync(histPath, Buffer.from(hist[1] ?? '', 'latin1'), o.sync, 0o600);
  } catch (e) {
    throw storageError('write', histPath, e);
  }
  await storeQueue?.add(histPath);
}

async function streamTimelines(session: Session, o: ReceiveOptions, resume: ResumePoint, segmentSize: number, storeQueue: StoreQueue | null, archived: readonly string[]): Promise<boolean> {
  let { start, timeline } = resume;
  // The history of the timeline streaming starts on, when missing (as pg_receivewal): without it
  // a recovery following the latest timeline stops at the one before.
  if (timeline > 1 && !historyPresent(o, timeline, archived)) {
    // A standby restored from an archive may not hold its own timeline's history file (PostgreSQL
    // restores those of the timelines before it): streaming goes on, as before this fetch.
    await fetchHistory(session, o, timeline, storeQueue).catch((e: unknown) => {
      if (!(e instanceof ServerError && e.sqlState === '58P01')) throw e;
      o.log(`warning: the server has no history file for timeline ${timeline} (${e.message}); streaming without it`);
    });
  }
  for (;;) {
    // A stop asked for before streaming (while connecting, storing leftovers, fetching a history file).
    if (o.signal.aborted) return true;
    if (o.endPosition !== undefined && start >= o.endPosition) {
      // Nothing to stream: what an earlier run left in the directory (queued by streamOnce) is stored before the end.
      await storeQueue?.drain(o.signal);
      return true;
    }
    o.log(`starting log streaming at ${formatLsn(start)} (timeline ${timeline})`);
    const files = new SegmentFiles(
      {
        dir: o.dir,
        timeline,
        segmentSize,
        sync: o.sync,
        synchronous: o.synchronous,
        compression: o.compression,
        onSegment: (name) => o.log(`receiving ${name}`),
        log: o.log,
        ...(storeQueue ? { onComplete: (path: string) => storeQueue.add(path) } : {}),
      },
      start,
    );
    const stream = new WalStream(session);
    if (o.endPosition !== undefined) stream.stopWhenReached(o.endPosition);
    const onAbort = () => stream.stopNow();
    o.signal.addEventListener('abort', onAbort);
    const syncTimer = !o.synchronous && o.sync ? setInterval(() => files.syncPartial(), Math.max(1000, o.statusIntervalMs)) : null;
    syncTimer?.unref();
    let end;
    let streamed = false;
    try {
      end = await stream.run({ slot: o.slot, synchronous: o.synchronous, start, timeline, statusIntervalMs: o.statusIntervalMs }, files);
      streamed = true;
    } finally {
      o.signal.removeEventListener('abort', onAbort);
      if (syncTimer) clearInterval(syncTimer);
      // Finished segments are retired; the one being received stays a .partial file.
      // The stream's own failure is the one to report, unless it ended because we were told to stop:
      // then the last fsync (what exit 0 promises is synced) is what may fail.
      const closing = files.close();
      if (streamed || o.signal.aborted) await closing;
      else await closing.catch(() => {});
    }
    if (o.signal.aborted) return true;
    // At the end position, everything is stored before the end. Not at a timeline switch: the queue
    // stores one file at a time, in order, a failed one first when tried again (store-queue.ts), so
    // the old timeline's segments go before the next one's history file without waiting for them,
    // and a repository down at that moment does not stop the stream (a synchronous standby's
    // primary would wait at every COMMIT until it came back).
    if (o.endPosition !== undefined && end.received >= o.endPosition) {
      o.log(`stopped log streaming at ${formatLsn(end.received)} (timeline ${timeline})`);
      await storeQueue?.drain(o.signal);
      return true;
    }
    if (!end.nextTimeline) {
      throw new PgpitrError('ERR_CONNECTION_LOST', 'the server ended WAL streaming without a timeline switch');
    }
    // Timeline switch: keep the old timeline's last segment as .partial, fetch the history file.
    const next = end.nextTimeline;
    o.log(`switched to timeline ${next.timeline} at ${next.start}`);
    await fetchHistory(session, o, next.timeline, storeQueue);
    timeline = next.timeline;
    start = segmentStart(segmentNumber(parseLsn(next.start), segmentSize), segmentSize);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/** The server removed WAL not received yet (no slot kept it): what it means, and how to go on. */
function walRemoved(e: unknown, dir: string, slot: string | undefined, stanza: boolean): unknown {
  if (!(e instanceof ServerError && e.sqlState === '58P01')) return e;
  // It resumes after the newest WAL it holds (and in repository mode, the stanza's archive): never past what is missing.
  const onward = stanza
    ? "to go on, archive the whole segments still in the server's pg_wal with pgpitr archive-push (oldest first, never the one being written): receive-wal resumes after the newest archived"
    : `to go on, start it on an empty directory (it resumes after the newest WAL in ${dir})`;
  // What was received of the segment before the gap stays in its .partial, which nothing stores or reads again.
  const partials = namesIn(dir).filter((n) => n.endsWith('.partial'));
  const left = partials.length > 0 ? `; ${partials.join(', ')} in ${dir} holds what was received before the gap, is neither stored nor read again: keep it aside for the record, or remove it` : '';
  return new PgpitrError('ERR_SERVER', e.message, {
    hint: `the server removed that WAL before it was received: unless another copy of it is archived (archive-push from elsewhere), WAL is missing from there and a new full backup is needed for point-in-time recovery past it; ${onward}${slot ? '' : '; give it a replication slot (-S NAME, created with --create-slot) so that the server keeps WAL until it is received'}${left}`,
  });
}

/** A slot that does not exist (42704) is a named object missing (exit 6), as for basebackup -S. */
export function slotMissing(e: unknown, slot: string | undefined, dropping = false): unknown {
  if (!(e instanceof ServerError && e.sqlState === '42704') || slot === undefined) return e;
  return new PgpitrError('ERR_NOT_FOUND', `replication slot "${slot}" does not exist`, {
    hint: dropping
      ? 'nothing to drop on this server: check the slot name (SELECT slot_name FROM pg_replication_slots) and the server (-h, -p)'
      : `create it with pgpitr receive-wal --create-slot -S ${slot}, or SELECT pg_create_physical_replication_slot('${slot}')`,
  });
}
