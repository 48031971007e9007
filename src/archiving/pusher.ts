// The background pusher of asynchronous archive-push. It stores ahead the WAL
// files PostgreSQL marks ready (pg_wal/archive_status/*.ready), several at a
// time, and leaves a marker per file in the spool for archive_command calls
// to answer from. When the WAL waiting to be archived passes the queue limit,
// it drops the waiting segments instead: they are marked as handled, so that
// PostgreSQL can recycle them, and the loss is recorded in the repository
// (info and check report it) and logged. Losing archive continuity is bad;
// a full pg_wal that stops the server is worse (seed 001, section 1.7).
// It exits once nothing has been ready for `idleExitMs`, or at once when its
// server has stopped.
//
// With several repositories, each has its own queue (repo-queue.ts: its own
// process-max slots and retry pauses, its markers in the spool), a file is
// read, checked, hashed and compressed once for the queues that take it at
// the same turn, and the server's marker is written once every repository has
// settled the file (repo-settle.ts). Past the queue limit, only the
// repositories lacking a file drop it, each recording its own drop. A
// repository that comes back gets the files still ready (catch-up).

import { join } from 'node:path';
import { hostname } from 'node:os';
import type { PreparedWalFile } from '../wal/archive-wal-file.js';
import { storePreparedWal } from '../repo/archive-store.js';
import type { PushOptions } from '../repo/archive-store.js';
import type { DropRecord } from '../repo/drops.js';
import { systemIdOfWalFile } from '../postgres/wal-file-system.js';
import { walFileKind } from '../repo/layout.js';
import type { StanzaInfo } from '../repo/stanza.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { listReadyWalFiles } from '../wal/archive-status.js';
import { clusterStopped } from '../postgres/postmaster-pid.js';
import { failureText } from './spool.js';
import type { PushSpool, MarkerKind } from './spool.js';
import { RepoQueue } from './repo-queue.js';
import { adoptSharedPendingDrops, forgetMarkersOfOtherRepositories, forgetOutdatedMarkers } from './pusher-start.js';
import { PreparedFiles } from './prepared-files.js';
import { planDrops, serverMarker } from './repo-settle.js';
import type { LabelledState, RepoFileState } from './repo-settle.js';

export interface PusherSettings {
  /** Every repository, by N. */
  repos: NumberedRepository[];
  /** The stanza record (of the first repository that could be read: segment size, system). */
  stanza: StanzaInfo;
  /** Per repository (same order), its stanza record, or null when it could not be read yet. */
  repoStanzas?: (StanzaInfo | null)[];
  /** Absolute path of the server's pg_wal. */
  pgWal: string;
  spool: PushSpool;
  push: PushOptions;
  /** Files stored at once, per repository (twice as many on remote storage: repo-queue.ts). */
  processMax: number;
  /** Bytes of WAL waiting to be archived past which waiting segments are dropped; null: never. */
  queueMaxBytes: number | null;
  idleExitMs: number;
  /**
   * Exits (between files) after this long (default 1 minute), so that changed settings
   * and a new pgpitr take over even while pgpitr-spool-wait answers every file.
   */
  maxLifetimeMs?: number;
  pollMs?: number;
  /** Pause before a failed file is tried again (in the repository where it failed). */
  retryMs?: number;
  log: (line: string) => void;
  /** Aborted: stop taking new files, finish those in flight, return. */
  signal?: AbortSignal;
}

export async function runPusher(s: PusherSettings): Promise<void> {
  const multi = s.repos.length > 1;
  const queues = s.repos.map(
    (r, i) => new RepoQueue(r, multi ? s.spool.forRepository(r.index) : s.spool, !multi, s.stanza.stanza, s.repoStanzas?.[i] ?? (multi ? null : s.stanza), s.log, s.processMax),
  );
  // The server's outdated markers first: the next step may carry them into repo1's spool, with a new time.
  forgetOutdatedMarkers(s, queues, false);
  forgetMarkersOfOtherRepositories(s, queues);
  if (multi) adoptSharedPendingDrops(s.spool, queues);
  forgetOutdatedMarkers(s, queues, multi);
  const prepared = new PreparedFiles(s.stanza, s.pgWal, s.push, s.processMax);
  const pollMs = s.pollMs ?? 50;
  const startedAt = Date.now();
  const maxLifetimeMs = s.maxLifetimeMs ?? 60_000;
  let idleSince = Date.now();
  let lastFlush = 0;
  /** .history and .backup files unsettled while the queue was past its limit: owed once a repository lacking them fails to take them. */
  const owedIfRefused = new Set<string>();
  const retryMs = s.retryMs ?? 5000;
  // Past its lifetime (and again each lifetime after), for RETIRE_GRACE_MS, no new store starts,
  // so that the pusher ends once those in flight have, even under a steady backlog (then
  // pgpitr-spool-wait answers every file from its markers, and no archive-push comes to compare
  // settings and start a pusher with changed ones). A store that hangs (a repository out of
  // reach) holds the pause no longer than that: the pusher goes on, and tries again later.
  const retiring = () => {
    const age = Date.now() - startedAt;
    return age >= maxLifetimeMs && (age - maxLifetimeMs) % maxLifetimeMs < RETIRE_GRACE_MS && !serverGone();
  };
  // Its server stopped (a failover on one host), nothing more is marked ready: looked at once a second.
  // What it left ready only this pusher stores, so it is tried on past the lifetime, STOPPED_SERVER_MS
  // at most (run W3: a repository failing past it left the old primary's backlog out of the archive).
  let lookedAt = 0;
  let gone = false;
  let saidGone = false;
  const serverGone = (): boolean => {
    if (Date.now() - lookedAt >= 1000) {
      lookedAt = Date.now();
      gone = clusterStopped(s.pgWal);
    }
    return gone;
  };
  const allInFlight = () => queues.flatMap((q) => [...q.inFlight.values()]);
  const inFlightAnywhere = (name: string) => queues.some((q) => q.inFlight.has(name));
  s.log(
    `pusher started: pg_wal ${s.pgWal}, process-max ${s.processMax}${multi ? ' per repository' : ''}` +
      `${queues.some((q) => q.slots !== s.processMax) ? ` (files stored at once: ${queues.map((q) => `${q.slots} in ${q.name}`).join(', ')})` : ''}, queue-max ${s.queueMaxBytes ?? 'none'}` +
      (multi ? `, repositories ${queues.map((q) => q.title).join(', ')}` : ''),
  );
  for (;;) {
    if (s.signal?.aborted) {
      await Promise.all(allInFlight());
      s.log('pusher stopped on request');
      return;
    }
    if (Date.now() - lastFlush > 1000) {
      for (const q of queues) q.flushSoon();
      lastFlush = Date.now();
    }
    const ready = listReadyWalFiles(s.pgWal);
    const markers = s.spool.list();
    const readMarkers = () => {
      for (const q of queues) q.markers = q.shared ? markers : q.spool.list();
    };
    readMarkers();
    cleanStaleMarkers(s.spool, markers, ready, inFlightAnywhere);
    if (multi) for (const q of queues) cleanStaleMarkers(q.spool, q.markers, ready, (n) => q.inFlight.has(n));
    if (multi) settleForServer(s.spool, markers, queues, ready);
    // Unsettled: ready and neither stored nor dropped (failed ones count: they still fill pg_wal).
    let unsettled = ready.filter((n) => { const k = markers.get(n); return k !== 'ok' && k !== 'dropped'; });
    let droppedAny = false;
    let droppedHere: string[] = []; // with one repository: the segments dropped, settled for the server at once
    const segments = s.queueMaxBytes === null ? [] : unsettled.filter(isSegmentLike);
    // Nothing is dropped while retiring: the pause in storing is no reason to lose WAL.
    if (s.queueMaxBytes !== null && !retiring() && segments.length * s.stanza.wal_segment_size > s.queueMaxBytes) {
      const plan = planDrops({
        unsettled: segments,
        settled: queues.map((q) => new Set(segments.filter((n) => q.settled(n)))),
        inFlight: queues.map((q) => new Set(q.inFlight.keys())),
        segmentSize: s.stanza.wal_segment_size,
        queueMaxBytes: s.queueMaxBytes,
      });
      const bytes = segments.length * s.stanza.wal_segment_size;
      for (const [i, names] of plan.entries()) {
        if (names.length === 0) continue;
        await drop(s, queues[i]!, names, bytes, multi);
        droppedAny = true;
      }
      droppedHere = plan[0] ?? [];
      for (const n of unsettled) if (!isSegmentLike(n)) owedIfRefused.add(n);
    }
    for (const n of owedIfRefused) if (!unsettled.includes(n)) owedIfRefused.delete(n);
    if (owedIfRefused.size > 0 || droppedAny) {
      droppedAny = oweSmallFiles(s, queues, [...owedIfRefused], multi) || droppedAny;
      if (droppedAny) {
        if (multi) {
          readMarkers();
          settleForServer(s.spool, markers, queues, ready);
        } else for (const n of droppedHere) markers.set(n, 'ok');
        unsettled = unsettled.filter((n) => { const k = markers.get(n); return k !== 'ok' && k !== 'dropped'; });
      }
    }
    // Failed files are tried again after a pause, without waiting for archive_command
    // to come back to them (PostgreSQL pauses a minute after three failures).
    const now = Date.now();
    for (const name of retiring() ? [] : unsettled) {
      if (queues.every((q) => q.full)) break;
      const takers = queues.filter((q) => q.wants(name, now, retryMs));
      if (takers.length === 0) continue;
      const file = prepared.take(name, takers.length);
      for (const q of takers) {
        q.inFlight.set(
          name,
          (async () => {
            let ok = false;
            try {
              ok = await storeIn(s, q, name, file, multi);
            } finally {
              await prepared.give(name);
            }
            q.inFlight.delete(name);
            if (ok) q.failedAt.delete(name);
            else q.failedAt.set(name, Date.now());
          })(),
        );
      }
    }
    // Owed copies are made with several repositories; one left alone may still hold some.
    if (!retiring()) for (const q of queues) storeOwed(s, q, prepared, retryMs);
    const inFlight = allInFlight();
    if (ready.length > 0 || inFlight.length > 0) idleSince = Date.now();
    else if (Date.now() - idleSince >= s.idleExitMs) break;
    // Its server stopped: what it left ready is all there is to store (files stored keep their .ready
    // files, which only the server renames); the last stored, the pusher leaves the spool at once.
    if (inFlight.length === 0 && unsettled.length === 0 && serverGone()) break;
    if (Date.now() - startedAt >= maxLifetimeMs && inFlight.length === 0) {
      const left = unsettled.length > 0 && serverGone();
      if (!left || Date.now() - startedAt >= Math.max(maxLifetimeMs, STOPPED_SERVER_MS)) {
        if (left) s.log(`pusher stopping: its server has stopped and ${unsettled.length} file(s) it left are not archived (${unsettled[0]} to ${unsettled[unsettled.length - 1]}); store them with pgpitr archive-push from its pg_wal (${s.pgWal}) once the repository takes them, or start that server again`);
        else s.log('pusher stopping after its maximum lifetime; the next archive_command starts a new one');
        return;
      }
      if (!saidGone) s.log(`its server has stopped with ${unsettled.length} file(s) not archived, which nothing else stores: trying on, for ${STOPPED_SERVER_MS / 60_000} minutes at most`);
      saidGone = true;
    }
    // Wake up when a file is done (a slot frees up) or to look for new ready files.
    if (queues.every((q) => q.full)) await Promise.race(inFlight);
    else await Promise.race([sleep(pollMs), ...inFlight]);
  }
  await Promise.all(queues.map((q) => q.flushPendingDrops()));
  s.log('pusher stopped: nothing left to archive');
}

/** How long a pusher whose server stopped keeps trying to store what that server left ready. */
const STOPPED_SERVER_MS = 15 * 60_000;

/** How long a pusher past its lifetime waits, storing nothing new, for its stores in flight to end. */
const RETIRE_GRACE_MS = 5000;

function isSegmentLike(name: string): boolean {
  const kind = walFileKind(name);
  return kind === 'segment' || kind === 'partial';
}

async function storeIn(s: PusherSettings, q: RepoQueue, name: string, file: Promise<PreparedWalFile>, multi: boolean): Promise<boolean> {
  const started = Date.now();
  const where = multi ? ` in ${q.name}` : '';
  try {
    const stanza = await q.stanzaInfo();
    const outcome = await storePreparedWal(q.repository.repo, stanza, (await file).prepared);
    // The repository takes files again: a drop it missed is recorded before we go on,
    // so that whoever sees this file archived also sees the gap explained.
    await q.flushPendingDrops();
    q.spool.write(name, 'ok', '', (await file).readAtMs);
    const fork = outcome.status === 'already-archived' && outcome.forkSegment ? `: a promotion ended its timeline in it, all its WAL is archived (${outcome.path}; the archive's ${name} is the old primary's: kept)` : '';
    s.log(`${outcome.status === 'stored' ? 'stored' : 'already archived'} ${name}${where}${fork} (${Date.now() - started} ms)`);
    if (q.failing && multi) s.log(`${q.title} takes files again`);
    q.failing = false;
    return true;
  } catch (e) {
    const message = failureText(e as Error & { hint?: string });
    q.spool.write(name, 'error', message);
    q.failing = true;
    s.log(`error: ${name}${multi ? ` in ${q.title}` : ''}: ${message.replace(/\n/g, ' ')}`);
    return false;
  }
}

async function drop(s: PusherSettings, q: RepoQueue, names: string[], queuedBytes: number, multi: boolean): Promise<void> {
  const first = names[0]!;
  const last = names[names.length - 1]!;
  // Files being stored when the queue was judged are not dropped: the names need not follow each other.
  const dropped = names.length === 1 ? `WAL segment ${first}` : `${names.length} WAL segment(s) of ${first} to ${last}`;
  const message = multi
    ? `${q.title}: archive-push queue of ${mib(queuedBytes)} exceeds archive-push-queue-max (${mib(s.queueMaxBytes!)}): ` +
      `dropped ${dropped} WITHOUT ARCHIVING THEM IN ${q.name.toUpperCase()}. ` +
      `Point-in-time recovery from ${q.name} across them is impossible; take a new full backup into ${q.name} once it keeps up again`
    : `archive-push queue of ${mib(queuedBytes)} exceeds archive-push-queue-max (${mib(s.queueMaxBytes!)}): ` +
      `dropped ${dropped} WITHOUT ARCHIVING THEM. ` +
      'Point-in-time recovery across them is impossible; take a new full backup once archiving keeps up again';
  const record: DropRecord = {
    first,
    last,
    count: names.length,
    queued_bytes: queuedBytes,
    queue_max_bytes: s.queueMaxBytes!,
    host: hostname(),
    pg_wal: s.pgWal,
    at: new Date().toISOString(),
  };
  const system = systemIdOfWalFile(join(s.pgWal, first));
  if (system !== null) record.system_identifier = system;
  // Recorded before anything is let go: in the repository, or, when that is what
  // cannot be reached (the usual reason for a growing queue), in the spool until it can.
  q.spool.savePendingDrop(`${record.at.replace(/[-:.]/g, '')}-${first}`, record);
  q.flushSoon();
  s.log(`ERROR: ${message}`);
  // The first one reaches archive_command, which logs the loss into the server log;
  // the rest are answered by the fast path.
  q.spool.write(first, 'dropped', message);
  for (const n of names.slice(1)) {
    if (multi) q.spool.write(n, 'dropped'); // settled for this repository; the server's marker says the rest
    else q.spool.write(n, 'ok', 'dropped');
  }
}

/**
 * Past the queue limit, a .history or .backup file a repository lacks must not hold the server's
 * archiver (which takes files in order, stopping at a failure) until that repository returns (the
 * segments behind it, dropped, would fill pg_wal all the same): a synced copy is kept in that
 * repository's spool (owed/), stored there when it can, and the file is settled for it. When no
 * repository has it (one repository, down), the server's marker says it is kept ('ok', 'owed').
 * True if any was.
 */
function oweSmallFiles(s: PusherSettings, queues: RepoQueue[], names: string[], multi: boolean): boolean {
  let any = false;
  for (const name of names) {
    // A store of it still running may fail: judged on a later turn, once none runs.
    if (queues.some((q) => q.inFlight.has(name))) continue;
    const lacking = queues.filter((q) => !q.settled(name));
    if (lacking.length === 0) continue;
    // Owed only by repositories that failed to take it or fail to take files: one that takes files
    // stores it on this turn, and until one has it, it is nowhere but in pg_wal and the spool.
    if (lacking.some((q) => !q.failing && !q.failedAt.has(name))) continue;
    for (const q of lacking) {
      q.spool.saveOwed(name, join(s.pgWal, name));
      if (multi) {
        q.spool.write(name, 'dropped');
        q.markers.set(name, 'dropped'); // settled now: this turn does not store it there
      }
      s.log(`${q.title} lacks ${name} while the queue is past archive-push-queue-max: a copy is kept in the spool and stored there when it takes files again`);
    }
    if (!queues.some((q) => q.markers.get(name) === 'ok')) {
      s.spool.write(name, 'ok', 'owed');
      if (!multi) queues[0]!.markers.set(name, 'ok'); // the server's markers are the one repository's
    }
    any = true;
  }
  return any;
}

/** Stores in `q` the copies kept for it by oweSmallFiles, one at a time, with its retry pause. */
function storeOwed(s: PusherSettings, q: RepoQueue, prepared: PreparedFiles, retryMs: number): void {
  const now = Date.now();
  for (const [name, path] of q.spool.owed()) {
    const key = `owed:${name}`;
    if (q.full) return;
    if (q.inFlight.has(key) || now - (q.failedAt.get(key) ?? 0) < retryMs) continue;
    const file = prepared.take(key, 1, path);
    q.inFlight.set(
      key,
      (async () => {
        try {
          await storePreparedWal(q.repository.repo, await q.stanzaInfo(), (await file).prepared);
          q.spool.forgetOwed(name);
          q.failedAt.delete(key);
          s.log(`stored ${name} in ${q.name} (kept in the spool while it could not take it)`);
        } catch (e) {
          q.failedAt.set(key, Date.now());
          if (!q.failing) s.log(`error: ${name} (kept in the spool) in ${q.title}: ${(e as Error).message}`);
        } finally {
          await prepared.give(key);
        }
        q.inFlight.delete(key);
      })(),
    );
    return; // one at a time: they are few and small
  }
}

/** Writes the server's marker of each ready file every repository has settled (or failed). */
function settleForServer(spool: PushSpool, markers: Map<string, MarkerKind>, queues: RepoQueue[], ready: string[]): void {
  for (const name of ready) {
    const current = markers.get(name);
    if (current === 'ok' || current === 'dropped') continue;
    const kinds = queues.map((q) => (q.inFlight.has(name) ? undefined : q.markers.get(name)));
    if (kinds.some((k) => k === undefined)) continue;
    if (current === 'error' && kinds.includes('error')) continue; // already said; archive_command removes it
    const states: LabelledState[] = queues.map((q, i) => ({ title: q.title, name: q.name, file: fileState(q, name, kinds[i]!) }));
    const marker = serverMarker(states);
    if (marker === null) continue;
    // Dated as the oldest of the repositories' markers: from when the file they stored was read.
    const times = queues.map((q) => q.spool.markerTime(name)).filter((t): t is number => t !== null);
    spool.write(name, marker.kind, marker.message, times.length > 0 ? Math.min(...times) : undefined);
    markers.set(name, marker.kind);
  }
}

function fileState(q: RepoQueue, name: string, kind: MarkerKind): RepoFileState {
  if (kind === 'ok') return { state: 'stored' };
  const message = q.spool.read(name)?.message ?? '';
  return kind === 'dropped' ? { state: 'dropped', message } : { state: 'error', message };
}

/** Removes markers of files the archiver is done with (no longer ready). */
function cleanStaleMarkers(spool: PushSpool, markers: Map<string, MarkerKind>, ready: string[], inFlight: (name: string) => boolean): void {
  if (markers.size === 0) return;
  const readySet = new Set(ready);
  for (const name of markers.keys()) {
    if (!readySet.has(name) && !inFlight(name)) {
      spool.remove(name);
      markers.delete(name);
    }
  }
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1048576)} MiB`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
