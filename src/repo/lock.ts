// A lock: an object created exclusively (Storage write with exclusive: true)
// holding pid, host, command and the process's start time, boot and pid
// namespace (common/process-identity.ts). A lock whose process is gone on this
// host (its pid free or taken by a later process, or written before a reboot)
// is stale and taken over (under a guard, removeStale, so that two newcomers
// never both take it); a live one, one of another host, or of another
// container sharing the host name (where its pid says nothing) is refused,
// and the hint says how to remove it.
// Commands that change shared state (stanza-create, backup, expire) hold one
// in the repository; the background processes of asynchronous archiving hold
// one in their spool directory. archive-push needs none: each file lands by
// an atomic rename.
//
// Why through Storage and not O_EXCL on a path: the lock lives where what it
// guards lives (the repository, whatever its driver), and exclusive creation
// is a promise of the Storage interface (posix: link(2) of a complete
// temporary file, so a reader never meets a half-written holder). Whether the
// holder is alive is a judgement of this host, made from the holder's content.
// On a store that ignores exclusive create (recorded in the repository marker
// by conditional-create.ts) a lock is advisory, and says so (lock.advisory).

import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgpitrError } from '../common/errors.js';
import type { Storage } from '../storage/storage.js';
import { readAll } from '../storage/storage.js';
import { storageJoin, storageParent } from '../storage/storage-path.js';
import { recordedConditionalCreate } from './conditional-create.js';
import { currentBootId, currentPidNamespace, processIdentity, processIsZombie, processStartTime } from '../common/process-identity.js';

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  /** What the holder runs with, for a newcomer to compare (the background pusher's options). */
  settings?: string[];
  /** The holder's start time, boot and pid namespace (absent in locks of older pgpitr: the pid alone tells). */
  start_ticks?: string;
  boot_id?: string;
  pid_ns?: string;
}

export class RepoLock {
  private released = false;

  private constructor(
    private readonly storage: Storage,
    private readonly path: string,
    /** What this process wrote: release() removes the lock only while it still says so. */
    private readonly content: Buffer,
    /**
     * The repository marker records that this store does not enforce exclusive create
     * (conditional-create.ts): another process may hold the "same" lock. Callers warn.
     */
    readonly advisory: boolean,
    /**
     * Known to exclude every other holder: a local file system (link(2)), or a store the
     * repository marker records as honouring exclusive create. Not when that was never checked.
     */
    readonly enforced: boolean,
  ) {}

  /**
   * Takes the lock at `path` (e.g. "backup.lock") of `storage`, taking over a stale one. `subject`
   * names what is locked in the messages (default: the repository).
   */
  static async acquire(storage: Storage, path: string, command: string, settings?: string[], subject = 'repository', opts: UnjudgedStaleness = {}): Promise<RepoLock> {
    const where = `${path} in ${storage.location}`;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // Not synced: a lock does not outlive its process in any way that matters (a reboot ends it).
      const content = holderContent(command, settings);
      try {
        await storage.write(path, content, { exclusive: true, atomic: true, sync: false });
        await removeDeadTemps(storage, path);
        const recorded = await recordedConditionalCreate(storage).catch(() => null);
        return new RepoLock(storage, path, content, recorded === false, enforcedOn(storage, recorded));
      } catch (e) {
        if (noSpace(e)) {
          // A full repository: expire and stanza-delete, which would free it, cannot take their lock either.
          const inRepository = subject === 'repository' || subject.startsWith('stanza ');
          throw new PgpitrError('ERR_STORAGE', `no space left to take the ${subject} lock ${where}: the file system holding it is full (or its quota reached)`, {
            hint: inRepository
              ? `free a little space on that file system (${command} needs a few kilobytes for its lock and records, before it removes anything), then run it again; expire (retention) and archive-push-queue-max keep a repository from filling up`
              : 'free space on that file system, then run it again',
            cause: (e as { cause?: unknown }).cause ?? e, // the file system's error itself (archive-push passes a spool refused so by)
          });
        }
        if (!(e instanceof PgpitrError && e.code === 'ERR_TARGET')) throw e;
        const raw = await readAll(storage, path).catch(() => null);
        if (raw === null) continue; // released meanwhile
        const found = parseHolder(raw);
        // A lock that does not parse and is over a minute old is what a power loss leaves of one
        // written without sync (an empty file): stale, or every later command would be refused.
        const garbled = found === null && (await olderThan(storage, path, GUARD_AGE_MS));
        if ((found && !(await mayBeAlive(storage, path, found, opts))) || garbled) {
          // Stale: its process is gone. Another newcomer may be taking it over at the same time.
          if (!(await removeStale(storage, path, raw))) await sleep(GUARD_BUSY_WAIT_MS);
          continue;
        }
        // A holder of this host is alive (a dead one was taken over above): only one that cannot be
        // judged from here (another host, another pid namespace) may need a hand.
        const here = found !== null && holderJudgeable(found);
        throw new PgpitrError('ERR_TARGET', `${subject} is locked by ${found ? `"${found.command}" (pid ${found.pid} on ${found.host})` : 'another command'}`, {
          hint: here
            ? 'wait for it to finish (the lock of a process that died is taken over by the next command: nothing to remove by hand)'
            : `wait for it to finish; if that process no longer runs on ${found ? found.host : 'its host'} (which this host cannot see), remove ${where}`,
        });
      }
    }
    throw new PgpitrError('ERR_TARGET', `could not take the ${subject} lock ${where}`, {
      hint: 'other processes kept taking and releasing it; run the command again',
    });
  }

  /**
   * Removes the lock, unless it is no longer this process's (taken over: then it is the new
   * holder's; gone: a later holder may be writing it). A second call does nothing.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    let now: Buffer | null | undefined;
    try {
      now = await readAll(this.storage, this.path);
    } catch {
      now = undefined; // cannot be read: removed all the same, as it most likely is still ours
    }
    if (now === null || (now !== undefined && !now.equals(this.content))) return;
    await this.storage.remove(this.path).catch(() => {}); // already gone
  }
}

function noSpace(e: unknown): boolean {
  const code = (e as { cause?: { code?: string } } | undefined)?.cause?.code ?? (e as { code?: string } | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Tries to take a lock: each pass is one exclusive write, or a wait while another process takes over a stale lock. */
const MAX_ATTEMPTS = 100;
const GUARD_BUSY_WAIT_MS = 25;
/** A takeover takes a few requests: a guard this old was left by a process killed during one. */
const GUARD_AGE_MS = 60_000;

export function holderContent(command: string, settings?: string[]): Buffer {
  const id = processIdentity(process.pid);
  const ns = currentPidNamespace();
  const holder: LockHolder & { at: string } = {
    pid: process.pid,
    host: hostname(),
    command,
    at: new Date().toISOString(),
    ...(settings ? { settings } : {}),
    ...(id ? { start_ticks: id.startTime, boot_id: id.bootId } : {}),
    ...(ns ? { pid_ns: ns } : {}),
  };
  return Buffer.from(JSON.stringify(holder));
}

/**
 * Removes the stale lock at `path` whose content is `stale`, under a guard: `<path>.takeover.lock`,
 * created exclusively. Two newcomers judging the same stale lock would otherwise race: the first
 * removes it and takes the lock, and the second, whose check that the lock still held what it
 * judged came just before that removal, removes the first one's lock. Under the guard the check
 * and the removal are one step: the stale content, once removed, never comes back, so a newcomer
 * that finds anything else there removes nothing. False when another process holds the guard (the
 * caller waits and looks again); a guard left by a process killed during a takeover is removed
 * once its holder is gone (or it is a minute old), and the next attempt takes it.
 */
async function removeStale(storage: Storage, path: string, stale: Buffer): Promise<boolean> {
  const guardPath = `${path}.takeover.lock`;
  const guard = holderContent('lock takeover');
  try {
    await storage.write(guardPath, guard, { exclusive: true, atomic: true, sync: false });
  } catch (e) {
    if (!(e instanceof PgpitrError && e.code === 'ERR_TARGET')) throw e;
    const other = await readAll(storage, guardPath).catch(() => null);
    if (other === null) return false;
    const holder = parseHolder(other);
    const entry = await storage.info(guardPath).catch(() => null);
    // Old by the store's time (its clock: an object store's LastModified) and by the time its writer
    // put in it: either alone is one clock against another, and a host whose clock runs ahead of
    // the store's would take every guard for old, a live one too (the review's finding).
    const at = writtenAt(other);
    const old = entry !== null && Date.now() - entry.mtimeMs > GUARD_AGE_MS && (!Number.isFinite(at) || Date.now() - at > GUARD_AGE_MS);
    if (holder === null || !holderAlive(holder) || old) {
      // Not guarded in turn: this happens only after a process was killed in the middle of a takeover.
      const again = await readAll(storage, guardPath).catch(() => null);
      if (again !== null && again.equals(other)) await storage.remove(guardPath).catch(() => {});
    }
    return false;
  }
  try {
    const now = await readAll(storage, path);
    if (now !== null && now.equals(stale)) await storage.remove(path);
  } finally {
    const mine = await readAll(storage, guardPath).catch(() => null);
    if (mine !== null && mine.equals(guard)) await storage.remove(guardPath).catch(() => {});
  }
  await removeDeadTemps(storage, guardPath);
  return true;
}

/** The time a lock or guard's writer put in it (ms), NaN when it has none or does not parse. */
function writtenAt(content: Buffer): number {
  try {
    return Date.parse((JSON.parse(content.toString('utf8')) as { at?: string }).at ?? '');
  } catch {
    return Number.NaN;
  }
}

/** A lock's temporary file is written and renamed in milliseconds: one this old was left behind. */
const TEMP_AGE_MS = 60_000;

/**
 * The temporary files a process killed while it wrote this lock left beside it (a posix atomic
 * write: <lock>.tmp-<host>-<pid>-<n>), of processes gone from this host: removed by the next
 * holder, best effort, once a minute old (a live writer's is never touched: its pid is alive).
 */
async function removeDeadTemps(storage: Storage, path: string): Promise<void> {
  try {
    const dir = storageParent(path);
    const base = path.slice(dir === '' ? 0 : dir.length + 1);
    const host = hostname();
    const prefix = `${base}.tmp-${host}-`;
    for (const e of await storage.list(dir, { prefix })) {
      const pid = /^(\d+)-\d+$/.exec(e.name.slice(prefix.length))?.[1];
      // Old as well: containers may share a host name, and another one's writer may have the pid of none here.
      const old = Date.now() - e.mtimeMs > TEMP_AGE_MS;
      if (pid !== undefined && old && !processAlive(Number(pid))) await storage.remove(storageJoin(dir, e.name)).catch(() => {});
    }
  } catch {
    /* only tidying */
  }
}

async function readHolder(storage: Storage, path: string): Promise<LockHolder | null> {
  try {
    const data = await readAll(storage, path);
    return data === null ? null : parseHolder(data);
  } catch {
    return null;
  }
}

function parseHolder(data: Buffer): LockHolder | null {
  try {
    return JSON.parse(data.toString('utf8')) as LockHolder;
  } catch {
    return null;
  }
}

/** Whether a process of this host is alive (EPERM: it is, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !processIsZombie(pid); // exited, not reaped yet (a kill -9 under a slow parent): dead
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' && !processIsZombie(pid);
  }
}

/**
 * Whether a lock at `path` would be enforced (see RepoLock.enforced) and is free now: what a
 * command that does not take it (a dry run) may judge as if it held it. A snapshot: taken a moment
 * later, by anyone.
 */
export async function enforcedAndFree(storage: Storage, path: string): Promise<boolean> {
  if ((await liveLockHolder(storage, path)) !== null) return false;
  return enforcedOn(storage, await recordedConditionalCreate(storage));
}

/** A lock is enforced on a store recorded as honouring exclusive create, or on a local one when nothing was recorded. */
function enforcedOn(storage: Storage, recorded: boolean | null): boolean {
  return recorded === true || (recorded === null && !storage.features.remote);
}

/** The process holding a lock, if it is alive on this host (or on another host: then assumed alive). */
export async function liveLockHolder(storage: Storage, path: string, opts: UnjudgedStaleness = {}): Promise<LockHolder | null> {
  const holder = await readHolder(storage, path);
  if (!holder) return null;
  return (await mayBeAlive(storage, path, holder, opts)) ? holder : null;
}

/**
 * For a lock its holder keeps touching (a spool's pusher or fetcher: archiving/background.ts runAsOnlyOne): one of
 * a holder that cannot be judged here (another host, another pid namespace: a container
 * restarted, the spool on a volume) is stale once untouched this long.
 */
export const SPOOL_LOCK_STALE_MS = 60_000;

export interface UnjudgedStaleness {
  unjudgedStaleAfterMs?: number | undefined;
}

async function mayBeAlive(storage: Storage, path: string, h: LockHolder, opts: UnjudgedStaleness): Promise<boolean> {
  if (!holderAlive(h)) return false;
  if (opts.unjudgedStaleAfterMs === undefined || holderJudgeable(h)) return true;
  return !(await olderThan(storage, path, opts.unjudgedStaleAfterMs));
}

/** Whether the lock at `path` was last written (or touched) more than `ms` ago; false when unknown. */
async function olderThan(storage: Storage, path: string, ms: number): Promise<boolean> {
  return storage.info(path).then((i) => i !== null && Date.now() - i.mtimeMs > ms).catch(() => false);
}

/** Whether this host can tell if the holder lives: its host, and its pid namespace when recorded. */
export function holderJudgeable(h: LockHolder): boolean {
  return h.host === hostname() && (h.pid_ns === undefined || h.pid_ns === currentPidNamespace());
}

/**
 * Whether a lock's holder may be alive. Of another host: assumed so. Of this host:
 * - written in another boot: gone (no process outlives a reboot; hosts sharing a repository under
 *   one host name are not supported);
 * - written in another pid namespace (a container sharing the host name): its pid means nothing
 *   here, so it cannot be judged: alive;
 * - else: gone when its pid is free, or taken by a process that started at another time.
 * Locks of older pgpitr (without these fields): by the pid alone.
 */
export function holderAlive(h: LockHolder): boolean {
  if (h.host !== hostname()) return true;
  if (h.boot_id !== undefined && currentBootId() !== null && h.boot_id !== currentBootId()) return false;
  if (h.pid_ns !== undefined && h.pid_ns !== currentPidNamespace()) return true;
  if (!processAlive(h.pid)) return false;
  if (h.start_ticks === undefined) return true;
  const now = processStartTime(h.pid);
  return now === null || now === h.start_ticks;
}

/**
 * Whether the lock's pid is, beyond doubt, its holder's process on this host (same boot, pid
 * namespace and start time), so that it may be signalled. Locks of older pgpitr: by the pid.
 */
export function holderIsHere(h: LockHolder): boolean {
  if (h.host !== hostname() || !holderAlive(h)) return false;
  if (h.start_ticks === undefined && h.boot_id === undefined && h.pid_ns === undefined) return true;
  return h.boot_id === currentBootId() && h.pid_ns === currentPidNamespace() && processStartTime(h.pid) === h.start_ticks;
}
