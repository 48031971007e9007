// The background pusher of asynchronous archive-push. It stores ahead the WAL
// files PostgreSQL marks ready (pg_wal/archive_status/*.ready), several at a
// time, and leaves a marker per file in the spool for archive_command calls
// to answer from. When the WAL waiting to be archived passes the queue limit,
// it drops the waiting segments instead: they are marked as handled, so that
// PostgreSQL can recycle them, and the loss is recorded in the repository
// (info and check report it) and logged. Losing archive continuity is bad;
// a full pg_wal that stops the server is worse (seed 001, section 1.7).
// It exits once nothing has been ready for `idleExitMs`.

import { join } from 'node:path';
import { hostname } from 'node:os';
import { archiveWalFile } from '../wal/archive-wal-file.js';
import type { PushOptions } from '../repo/archive-store.js';
import type { Repository } from '../repo/repository.js';
import { recordDrop } from '../repo/drops.js';
import type { DropRecord } from '../repo/drops.js';
import { walFileKind } from '../repo/layout.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { listReadyWalFiles } from '../wal/archive-status.js';
import { failureText } from './spool.js';
import type { PushSpool, MarkerKind } from './spool.js';

export interface PusherSettings {
  repo: Repository;
  stanza: StanzaInfo;
  /** Absolute path of the server's pg_wal. */
  pgWal: string;
  spool: PushSpool;
  push: PushOptions;
  /** Files stored at once. */
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
  /** Pause before a failed file is tried again. */
  retryMs?: number;
  log: (line: string) => void;
  /** Aborted: stop taking new files, finish those in flight, return. */
  signal?: AbortSignal;
}

export async function runPusher(s: PusherSettings): Promise<void> {
  const inFlight = new Map<string, Promise<void>>();
  const pollMs = s.pollMs ?? 50;
  const startedAt = Date.now();
  const maxLifetimeMs = s.maxLifetimeMs ?? 60_000;
  let idleSince = Date.now();
  let lastFlush = 0;
  const failedAt = new Map<string, number>();
  const retryMs = s.retryMs ?? 5000;
  s.log(`pusher started: pg_wal ${s.pgWal}, process-max ${s.processMax}, queue-max ${s.queueMaxBytes ?? 'none'}`);
  for (;;) {
    if (s.signal?.aborted) {
      await Promise.all(inFlight.values());
      s.log('pusher stopped on request');
      return;
    }
    if (Date.now() - lastFlush > 1000) {
      await flushPendingDrops(s);
      lastFlush = Date.now();
    }
    const ready = listReadyWalFiles(s.pgWal);
    const markers = s.spool.list();
    cleanStaleMarkers(s, ready, markers, inFlight);
    // Unsettled: ready and neither stored nor dropped (failed ones count: they still fill pg_wal).
    let unsettled = ready.filter((n) => { const k = markers.get(n); return k !== 'ok' && k !== 'dropped'; });
    if (s.queueMaxBytes !== null) {
      const bytes = unsettled.filter(isSegmentLike).length * s.stanza.wal_segment_size;
      if (bytes > s.queueMaxBytes) {
        const dropped = new Set(unsettled.filter((n) => isSegmentLike(n) && !inFlight.has(n)));
        await drop(s, [...dropped], bytes);
        unsettled = unsettled.filter((n) => !dropped.has(n));
      }
    }
    // Failed files are tried again after a pause, without waiting for archive_command
    // to come back to them (PostgreSQL pauses a minute after three failures).
    const now = Date.now();
    const due = (n: string) => markers.get(n) === 'error' && now - (failedAt.get(n) ?? 0) >= retryMs;
    const waiting = unsettled.filter((n) => (!markers.has(n) || due(n)) && !inFlight.has(n));
    for (const name of waiting) {
      if (inFlight.size >= s.processMax) break;
      inFlight.set(
        name,
        pushOne(s, name).then((ok) => {
          inFlight.delete(name);
          if (ok) failedAt.delete(name);
          else failedAt.set(name, Date.now());
        }),
      );
    }
    if (ready.length > 0 || inFlight.size > 0) idleSince = Date.now();
    else if (Date.now() - idleSince >= s.idleExitMs) break;
    if (Date.now() - startedAt >= maxLifetimeMs && inFlight.size === 0) {
      s.log('pusher stopping after its maximum lifetime; the next archive_command starts a new one');
      return;
    }
    // Wake up when a file is done (a slot frees up) or to look for new ready files.
    if (inFlight.size >= s.processMax) await Promise.race(inFlight.values());
    else await Promise.race([sleep(pollMs), ...inFlight.values()]);
  }
  await flushPendingDrops(s);
  s.log('pusher stopped: nothing left to archive');
}

function isSegmentLike(name: string): boolean {
  const kind = walFileKind(name);
  return kind === 'segment' || kind === 'partial';
}

async function pushOne(s: PusherSettings, name: string): Promise<boolean> {
  const started = Date.now();
  try {
    const outcome = await archiveWalFile(s.repo, s.stanza, join(s.pgWal, name), s.push);
    // The repository takes files again: a drop it missed is recorded before we go on,
    // so that whoever sees this file archived also sees the gap explained.
    await flushPendingDrops(s);
    s.spool.write(name, 'ok');
    s.log(`${outcome.status === 'stored' ? 'stored' : 'already archived'} ${name} (${Date.now() - started} ms)`);
    return true;
  } catch (e) {
    const message = failureText(e as Error & { hint?: string });
    s.spool.write(name, 'error', message);
    s.log(`error: ${name}: ${message.replace(/\n/g, ' ')}`);
    return false;
  }
}

async function drop(s: PusherSettings, names: string[], queuedBytes: number): Promise<void> {
  if (names.length === 0) return;
  const first = names[0]!;
  const last = names[names.length - 1]!;
  const message =
    `archive-push queue of ${mib(queuedBytes)} exceeds archive-push-queue-max (${mib(s.queueMaxBytes!)}): ` +
    `dropped ${names.length} WAL segment(s) ${first}${names.length > 1 ? ` to ${last}` : ''} WITHOUT ARCHIVING THEM. ` +
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
  // Recorded before anything is let go: in the repository, or, when that is what
  // cannot be reached (the usual reason for a growing queue), in the spool until it can.
  s.spool.savePendingDrop(`${record.at.replace(/[-:.]/g, '')}-${first}`, record);
  await flushPendingDrops(s);
  s.log(`ERROR: ${message}`);
  // The first one reaches archive_command, which logs the loss into the server log;
  // the rest are answered by the fast path.
  s.spool.write(first, 'dropped', message);
  for (const n of names.slice(1)) s.spool.write(n, 'ok', 'dropped');
}

const warnedPending = new Set<string>();

/** Moves drop records kept in the spool to the repository, as soon as it takes them. */
let flushing: Promise<void> = Promise.resolve();

/** One flush at a time (pushes in flight call it concurrently), each after the one before. */
function flushPendingDrops(s: PusherSettings): Promise<void> {
  flushing = flushing.catch(() => {}).then(() => flushPendingDropsNow(s));
  return flushing;
}

async function flushPendingDropsNow(s: PusherSettings): Promise<void> {
  for (const { id, record } of s.spool.pendingDrops()) {
    try {
      await recordDrop(s.repo, s.stanza.stanza, record as DropRecord);
    } catch (e) {
      if (!warnedPending.has(id)) s.log(`warning: cannot record dropped WAL in the repository yet (kept in the spool, tried again every second): ${(e as Error).message}`);
      warnedPending.add(id);
      return;
    }
    s.spool.forgetPendingDrop(id);
  }
}

/** Removes markers of files the archiver is done with (no longer ready). */
function cleanStaleMarkers(s: PusherSettings, ready: string[], markers: Map<string, MarkerKind>, inFlight: Map<string, unknown>): void {
  if (markers.size === 0) return;
  const readySet = new Set(ready);
  for (const name of markers.keys()) {
    if (!readySet.has(name) && !inFlight.has(name)) {
      s.spool.remove(name);
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
