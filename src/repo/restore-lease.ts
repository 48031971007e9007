// Restore leases: a restore says, in the repository, which backup it reads, so
// that expire (run by hand, or by a backup when it ends) keeps that backup and
// the WAL after it while the restore copies its files, and for a while after
// (the restored server's recovery then fetches that WAL). Without it, the
// nightly backup's expire could remove the backup a restore is half-way through,
// after a --delta had already rewritten part of the target.
//
// A lease is an object <stanza>/restore-lease/<backup id>-<random>.json holding
// the backup's id and its holder (pid, host, process identity, as a lock). It
// is live while its holder is alive (renewed every minute; a holder of another
// host, which cannot be looked at, counts as alive until the lease is
// LEASE_STALE_MS old). Once the restore has ended well, the lease holds the
// backup for the recovery of the restored directory: until that recovery ends
// (its recovery.signal or standby.signal goes, and after a promotion the new
// timeline's history file is archived, which an expire on the restore's host
// sees) and HOLD_AFTER_RESTORE_MS at most, unless a recovery.signal alone is still
// there (a recovery not started yet: an expire on the restore's host sees it).
//
// The race (a restore choosing a backup while an expire removes it) is closed
// by order, each side writing before it reads what the other writes. An expire
// that would remove a backup or WAL writes <stanza>/restore-lease/expiring.json
// (renewed while it runs), then reads the leases and decides again; before the
// marker goes it rewrites the stamp expired.json. A restore waits for a live
// marker before it reads the catalog, notes the stamp and the marker, and once
// its lease is written reads the marker (an expire running: it waits for it to
// end and refuses, having written nothing), the stanza's record, the stamp and
// marker again (changed: an expire ran meanwhile, refused) and the backup's
// record. An expire that removes nothing writes nothing here.

import { randomBytes } from 'node:crypto';
import { PgpitrError } from '../common/errors.js';
import type { Storage } from '../storage/storage.js';
import { readAll } from '../storage/storage.js';
import { storageJoin } from '../storage/storage-path.js';
import { restoreLeasePath, stanzaRecordPath } from './layout.js';
import { holderAlive, holderContent, holderJudgeable } from './lock.js';
import { isStaleTemp } from './archive-temp.js';
import type { LockHolder } from './lock.js';

/** How often a live holder rewrites its lease. */
export const LEASE_RENEW_MS = 60_000;
/** A lease (or expire's marker) whose holder cannot be looked at from here is stale once untouched this long. */
export const LEASE_STALE_MS = 10 * 60_000;
/** How long a lease holds its backup after the restore has ended: the restored server's recovery fetches its WAL meanwhile. */
export const HOLD_AFTER_RESTORE_MS = 24 * 3600_000;
/** Past HOLD_AFTER_RESTORE_MS, how much longer a recovery still to run (its recovery.signal there) holds it, at most. */
export const HOLD_PENDING_MORE_MS = 6 * 24 * 3600_000;

const EXPIRING = 'expiring.json';
/** Rewritten by each expire (or stanza-delete) that wrote a marker, before the marker goes. */
const EXPIRED_STAMP = 'expired.json';

/**
 * What a restore reads before the catalog and again once its lease is written: the stamp and the
 * marker as they are. Changed: an expire ran in between (one killed leaves its marker; one whose
 * stamp could not be written leaves it too).
 */
export async function expiryStamp(storage: Storage, stanza: string): Promise<string> {
  return (await stampAndMarker(storage, stanza)).key;
}

async function stampAndMarker(storage: Storage, stanza: string): Promise<{ key: string; marker: Buffer | null }> {
  const dir = restoreLeasePath(stanza);
  const stamp = await readAll(storage, storageJoin(dir, EXPIRED_STAMP));
  const marker = await readAll(storage, storageJoin(dir, EXPIRING));
  return { key: JSON.stringify([stamp?.toString('utf8') ?? null, marker?.toString('utf8') ?? null]), marker };
}

/** A restore refused because an expire (or stanza-delete) is still removing backups after waitMs. */
function stillRemoving(storage: Storage, stanza: string, holder: string, waitMs: number, restoring: string): PgpitrError {
  return new PgpitrError('ERR_TARGET', `${holder} is removing backups of stanza ${stanza}, and has not ended in ${Math.round(waitMs / 1000)} s: ${restoring} wrote nothing`, {
    hint: 'run the restore again once it has ended; if that process no longer exists, remove ' + `${storageJoin(restoreLeasePath(stanza), EXPIRING)} in ${storage.location}`,
  });
}

/** A restore refused because an expire removed backups or WAL after it had read the catalog. */
function removedMeanwhile(stanza: string, who: string, backup: string): PgpitrError {
  return new PgpitrError('ERR_TARGET', `${who} removed backups or WAL of stanza ${stanza} while this restore chose backup ${backup}: nothing was written`, {
    hint: 'run the restore again: it plans anew from what the repository holds now',
  });
}

/**
 * Before a restore reads the catalog: an expire removing backups now is waited for (up to waitMs
 * each time), so that the catalog read is what it left; then expiryStamp(), taken with no live
 * marker in it (one that appeared meanwhile is waited for too). Refused when expires do not end.
 */
export async function expiryStampWhenQuiet(storage: Storage, stanza: string, opts: { waitMs?: number; log?: (line: string) => void } = {}): Promise<string> {
  const waitMs = opts.waitMs ?? 60_000;
  const path = storageJoin(restoreLeasePath(stanza), EXPIRING);
  for (let round = 0; ; round++) {
    const running = await waitForExpire(storage, stanza, waitMs, undefined, opts.log);
    if ((running !== null && !running.ended) || round >= 3) throw stillRemoving(storage, stanza, running?.holder ?? 'expire', waitMs, 'this restore');
    const { key, marker } = await stampAndMarker(storage, stanza);
    const holder = marker === null ? null : parse(marker);
    if (holder === null || !(await holds(storage, path, holder, Date.now()))) return key;
  }
}

interface LeaseContent extends LockHolder {
  at: string;
  backup: string;
  /** Once the restore has ended: until when it holds the backup, at most. */
  hold_until?: string;
  /** The data directory restored (absolute), where the recovery runs. */
  data_dir?: string;
}

/**
 * Whether a recovery is still to run in a data directory of this host (its signal files); null
 * when it cannot be told; 'recovery': one that ends (recovery.signal alone), not a standby's.
 * Given by the caller: the repository does not look at data directories.
 */
export type RecoveryPending = (dataDir: string) => boolean | 'recovery' | null;

export interface LiveLease {
  /** The object's name in the stanza's lease directory. */
  name: string;
  backup: string;
  /** The holder, for messages: "restore (pid 123 on db1)", "a restore that ended at ...". */
  holder: string;
  /** The restore itself still runs (or may: another host's, renewed); false: held for a recovery. */
  running: boolean;
}

function contentOf(command: string, extra: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify({ ...(JSON.parse(holderContent(command).toString('utf8')) as object), ...extra }));
}

function parse(raw: Buffer): LeaseContent | null {
  try {
    const c = JSON.parse(raw.toString('utf8')) as Partial<LeaseContent>;
    return typeof c.pid === 'number' && typeof c.host === 'string' ? (c as LeaseContent) : null;
  } catch {
    return null;
  }
}

/**
 * Whether what a holder wrote at `path` (lease or marker) still holds. `storeNowMs`: the store's
 * own clock now (the time it gave an object just written), against which an object's age is told.
 */
async function holds(storage: Storage, path: string, c: LeaseContent, nowMs: number, pending?: RecoveryPending, storeNowMs?: number): Promise<boolean> {
  if (c.hold_until !== undefined && Date.parse(c.hold_until) > nowMs) {
    // Held for the recovery, which ends once its signal files are gone (a directory not seen from
    // here, gone or in another mount namespace, tells nothing: held).
    const known = c.data_dir !== undefined && pending !== undefined && holderJudgeable(c) ? pending(c.data_dir) : null;
    if (known === false && !holderAlive(c)) return false;
    return true;
  }
  // Past HOLD_AFTER_RESTORE_MS: a recovery still to run there (restored on Friday, started on
  // Monday) would meet its backup and WAL expired; a standby's signal never goes, and is not waited for.
  if (c.hold_until !== undefined && c.data_dir !== undefined && pending !== undefined && Date.parse(c.hold_until) + HOLD_PENDING_MORE_MS > nowMs && holderJudgeable(c) && pending(c.data_dir) === 'recovery') return true;
  if (!holderAlive(c)) return false;
  if (holderJudgeable(c)) return true;
  // Another host's (or container's): alive while it keeps renewing. Old by the store's clock and by
  // the writer's both, so that neither clock alone (this host's running ahead) ends a live lease.
  const entry = await storage.info(path).catch(() => null);
  const at = Date.parse(c.at);
  const storeAge = entry === null ? 0 : (storeNowMs ?? nowMs) - entry.mtimeMs;
  return !(storeAge > LEASE_STALE_MS && (!Number.isFinite(at) || nowMs - at > LEASE_STALE_MS));
}

function describe(c: LeaseContent, nowMs: number): string {
  if (c.hold_until === undefined || holderAlive(c)) return `${c.command} (pid ${c.pid} on ${c.host})`;
  const where = c.data_dir !== undefined ? ` in ${c.data_dir}` : '';
  if (Date.parse(c.hold_until) <= nowMs) return `a restore by pid ${c.pid} on ${c.host}, held for its recovery${where}, whose recovery.signal is still there (a recovery not started, or abandoned: remove the directory, or start it), ${new Date(Date.parse(c.hold_until) + HOLD_PENDING_MORE_MS).toISOString()} at the latest`;
  return `a restore by pid ${c.pid} on ${c.host}, held for its recovery${where} until that ends (its recovery.signal or standby.signal goes, and the history file of a promotion is archived), ${c.hold_until} at the latest`;
}

export interface LeaseReading {
  /** With an expire under an enforced backup lock: the stale ones are removed. */
  removeStale?: boolean;
  nowMs?: number;
  /** The store's clock now (see holds()). */
  storeNowMs?: number | undefined;
  recoveryPending?: RecoveryPending | undefined;
}

/** The stanza's live leases. */
export async function liveLeases(storage: Storage, stanza: string, opts: LeaseReading = {}): Promise<LiveLease[]> {
  const dir = restoreLeasePath(stanza);
  const out: LiveLease[] = [];
  for (const e of await storage.list(dir)) {
    const path = storageJoin(dir, e.name);
    const nowMs = opts.nowMs ?? Date.now();
    // What a restore killed while it wrote its lease left (posix: the atomic write's temporary file).
    if (e.type === 'file' && opts.removeStale && isStaleTemp(e.name, (opts.storeNowMs ?? nowMs) - e.mtimeMs)) await storage.remove(path).catch(() => {});
    if (e.type !== 'file' || e.name === EXPIRING || e.name === EXPIRED_STAMP || !e.name.endsWith('.json')) continue;
    const raw = await readAll(storage, path);
    if (raw === null) continue; // released meanwhile
    const c = parse(raw);
    // One that does not parse: a write cut short by a crash (leases are not synced while renewed): kept a while.
    if (c === null || typeof c.backup !== 'string') {
      if (opts.removeStale && (opts.storeNowMs ?? nowMs) - e.mtimeMs > LEASE_STALE_MS) await storage.remove(path).catch(() => {});
      continue;
    }
    if (await holds(storage, path, c, nowMs, opts.recoveryPending, opts.storeNowMs)) out.push({ name: e.name, backup: c.backup, holder: describe(c, nowMs), running: c.hold_until === undefined && holderAlive(c) });
    else if (opts.removeStale) await storage.remove(path).catch(() => {});
  }
  return out;
}

/** Whether a write failed because this process may only read the repository (then a restore goes on without a lease). */
function mayOnlyRead(e: unknown): boolean {
  const code = ((e as { cause?: NodeJS.ErrnoException }).cause ?? (e as NodeJS.ErrnoException)).code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || (e instanceof PgpitrError && /^access denied/.test(e.message));
}

/**
 * An object rewritten every LEASE_RENEW_MS until stopped: the writes in order, one at a time, and
 * none after stop() has returned (a renewal landing after the last write would undo it).
 */
class Renewed {
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly storage: Storage, readonly path: string, private readonly content: () => Buffer) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.stopped) return;
      this.chain = this.chain.then(() => (this.stopped ? undefined : this.storage.write(this.path, this.content(), { atomic: true, sync: false }).catch(() => {})));
    }, LEASE_RENEW_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.chain;
  }
}

/** A restore's lease on one backup, renewed while the restore runs. */
export class RestoreLease {
  private readonly renewal: Renewed;
  private written = true;

  private constructor(private readonly storage: Storage, readonly path: string, private readonly backup: string) {
    this.renewal = new Renewed(storage, path, () => contentOf('restore', { backup }));
  }

  /**
   * Leases `backup` for a restore, then checks that no expire is removing backups (waiting up to
   * `waitMs` for one to end: refused if it is still there then) and that `stillThere` (the backup
   * and those it takes files from, complete) holds. Refusals release the lease; nothing else is
   * written. A repository this process may only read gets no lease (a warning).
   */
  static async take(
    storage: Storage,
    stanza: string,
    backup: string,
    stillThere: () => Promise<string | null>,
    opts: { waitMs?: number; log?: (line: string) => void; /** expiryStamp() read before the restore read the catalog. */ stampBefore?: string } = {},
  ): Promise<RestoreLease> {
    const lease = new RestoreLease(storage, storageJoin(restoreLeasePath(stanza), `${backup}-${randomBytes(6).toString('hex')}.json`), backup);
    try {
      await storage.write(lease.path, contentOf('restore', { backup }), { atomic: true, sync: false });
    } catch (e) {
      if (!mayOnlyRead(e)) throw e;
      // A read-only mount, credentials for reading: it restores all the same.
      opts.log?.(`warning: no lease on backup ${backup} could be written in ${storage.location} (${(e as Error).message}): an expire running meanwhile may remove it`);
      lease.written = false;
    }
    try {
      // The marker is judged by the store's clock (the time it gave this lease), not this host's alone.
      const written = lease.written ? await storage.info(lease.path).catch(() => null) : null;
      const base = written?.mtimeMs;
      const t0 = Date.now();
      const storeNow = base === undefined ? undefined : () => base + (Date.now() - t0);
      const waitMs = opts.waitMs ?? 60_000;
      const expiring = await waitForExpire(storage, stanza, waitMs, storeNow, opts.log);
      if (expiring !== null) throw expiring.ended ? removedMeanwhile(stanza, expiring.holder, backup) : stillRemoving(storage, stanza, expiring.holder, waitMs, `this restore of backup ${backup}`);
      // A stanza-delete removes the record under its marker, the rest after it.
      if ((await storage.info(stanzaRecordPath(stanza))) === null) {
        throw new PgpitrError('ERR_NOT_FOUND', `stanza "${stanza}" was deleted while this restore chose backup ${backup}: nothing was written`, { hint: 'pgpitr info lists the stanzas of the repository' });
      }
      // An expire that ended between this restore's reading of the catalog and its lease (met neither way).
      if (opts.stampBefore !== undefined && (await expiryStamp(storage, stanza)) !== opts.stampBefore) throw removedMeanwhile(stanza, 'an expire', backup);
      const gone = await stillThere();
      if (gone !== null) throw new PgpitrError('ERR_NOT_FOUND', `${gone}, since this restore read the catalog (an expire?): nothing was written`, { hint: 'run the restore again: it chooses among the backups there now' });
    } catch (e) {
      await lease.release();
      throw e;
    }
    if (lease.written) lease.renewal.start();
    return lease;
  }

  /**
   * The restore has ended well: the lease holds the backup for the recovery in `dataDir` (absolute),
   * until its signal files are gone (expire looks, on this host), HOLD_AFTER_RESTORE_MS at most.
   */
  async hold(dataDir: string, nowMs = Date.now()): Promise<void> {
    await this.renewal.stop();
    if (!this.written) return;
    const content = contentOf('restore', { backup: this.backup, hold_until: new Date(nowMs + HOLD_AFTER_RESTORE_MS).toISOString(), data_dir: dataDir });
    await this.storage.write(this.path, content, { atomic: true, sync: true });
    await this.dropSuperseded(dataDir, parse(content)!.host);
  }

  /**
   * An earlier restore into the same directory of this host held its backup for a recovery that
   * can no longer run there (this restore replaced what it wrote): its lease is removed, else a
   * recovery.signal there now would keep it holding.
   */
  private async dropSuperseded(dataDir: string, host: string): Promise<void> {
    const dir = this.path.slice(0, this.path.lastIndexOf('/'));
    for (const e of await this.storage.list(dir).catch(() => [])) {
      const path = storageJoin(dir, e.name);
      if (path === this.path || e.type !== 'file' || !e.name.endsWith('.json') || e.name === EXPIRING || e.name === EXPIRED_STAMP) continue;
      const raw = await readAll(this.storage, path).catch(() => null);
      const c = raw === null ? null : parse(raw);
      // Only a holder judged from here (this host and boot, this container): another container's
      // directory of the same name is another directory.
      if (c !== null && c.hold_until !== undefined && c.data_dir === dataDir && c.host === host && holderJudgeable(c)) await this.storage.remove(path).catch(() => {});
    }
  }

  /** The restore failed: the backup is free to expire. */
  async release(): Promise<void> {
    await this.renewal.stop();
    if (!this.written) return;
    await this.storage.remove(this.path).catch(() => {});
  }
}

/**
 * Null when no expire (or stanza-delete) is removing backups; else the one met, `ended` when it
 * ended while this waited (up to waitMs): what it removed is not known to the restore's plan.
 */
async function waitForExpire(storage: Storage, stanza: string, waitMs: number, storeNow: (() => number) | undefined, log?: (line: string) => void): Promise<{ holder: string; ended: boolean } | null> {
  const path = storageJoin(restoreLeasePath(stanza), EXPIRING);
  const until = Date.now() + waitMs;
  let met: string | null = null;
  for (;;) {
    const raw = await readAll(storage, path);
    const c = raw === null ? null : parse(raw);
    if (c === null || !(await holds(storage, path, c, Date.now(), undefined, storeNow?.()))) return met === null ? null : { holder: met, ended: true };
    if (met === null) log?.(`${describe(c, Date.now())} is removing backups of stanza ${stanza}: waiting for it to end`);
    met = describe(c, Date.now());
    if (Date.now() >= until) return { holder: met, ended: false };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Expire's side (and stanza-delete's): the marker that it is removing backups, written (and
 * renewed while it runs) before `work` reads the leases, so that a restore taking its lease after
 * that reading finds the marker; removed when `work` ends, whatever happens. `work` gets the
 * store's clock at the marker's writing (its time on the stored object), for telling leases' ages.
 */
export async function whileExpiring<T>(storage: Storage, stanza: string, work: (storeNowMs: number | undefined) => Promise<T>, command = 'expire'): Promise<T> {
  const path = storageJoin(restoreLeasePath(stanza), EXPIRING);
  const token = randomBytes(8).toString('hex');
  const content = (): Buffer => contentOf(command, { token });
  await storage.write(path, content(), { atomic: true, sync: false });
  const renewal = new Renewed(storage, path, content);
  renewal.start();
  try {
    const written = await storage.info(path).catch(() => null);
    return await work(written?.mtimeMs);
  } finally {
    // Before the marker goes (whatever work did): a restore that met neither finds the stamp changed
    // (RestoreLease.take). Not written (twice): the marker stays, which such a restore finds changed too.
    const stamp = (): Promise<void> => storage.write(storageJoin(restoreLeasePath(stanza), EXPIRED_STAMP), Buffer.from(JSON.stringify({ token: randomBytes(8).toString('hex'), at: new Date().toISOString(), by: command })), { atomic: true, sync: false });
    const stamped = await stamp().then(() => true, () => stamp().then(() => true, () => false));
    await renewal.stop();
    if (stamped) {
      const now = await readAll(storage, path).catch(() => null);
      // Ours (written or renewed by this call), not another's written over it (advisory locks).
      const holder = now === null ? null : (parse(now) as (LeaseContent & { token?: string }) | null);
      if (holder !== null && holder.token === token) await storage.remove(path).catch(() => {});
    }
  }
}

/**
 * The marker an expire or stanza-delete killed while it ran left: removed by the next one that
 * holds the backup lock where the store enforces it (no other can be running).
 */
export async function removeLeftMarker(storage: Storage, stanza: string): Promise<void> {
  const dir = restoreLeasePath(stanza);
  await storage.remove(storageJoin(dir, EXPIRING)).catch(() => {});
  // And the temporary files of writes killed there (the marker's, the stamp's, a lease's).
  const entries = await storage.list(dir).catch(() => []);
  for (const e of entries) if (e.type === 'file' && isStaleTemp(e.name, Date.now() - e.mtimeMs)) await storage.remove(storageJoin(dir, e.name)).catch(() => {});
}
