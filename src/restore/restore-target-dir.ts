// Where a restore writes, checked before anything is written: the data
// directory (empty, or with --delta a stopped cluster), and each tablespace's
// directory (the recorded location, or where --tablespace-map puts it).

import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync, existsSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { shellWord } from '../common/shell-quote.js';
import { controlSystemIdentifier } from '../postgres/control-file.js';
import { livePostmaster } from '../postgres/postmaster-pid.js';

export interface TargetState {
  path: string;
  exists: boolean;
  empty: boolean;
  /** Holds PG_VERSION: a cluster (or what is left of one). */
  isCluster: boolean;
  /** postmaster.pid names a live process (0: the file cannot be read or parsed; negative: a pid not alive here, of a server started since this machine did). */
  runningPid: number | null;
  /** An earlier restore stopped before it finished (its marker is there): a rerun resumes it as a delta. */
  interruptedRestore: boolean;
  /** An earlier restore wrote pg_control, its last file, and its marker or lock is still there: stopped as it ended. */
  endedRestore?: boolean;
}

/** Written first and removed last (after pg_control): while it exists, the directory is a restore in progress. */
export const RESTORE_MARKER = 'pgpitr_restore.inprogress';

/** Held in the data directory by the restore writing it (target-owner.ts lockTarget). */
export const RESTORE_LOCK = 'pgpitr_restore.lock';

/**
 * A file of restore's own at the top of a data directory: its lock (with the lock's takeover
 * guard and temporary files) and its marker. Never taken from a backup (a cluster whose restore
 * was killed at the last moment and which was then started and backed up holds them).
 */
export function isRestoreFile(name: string): boolean {
  return name.startsWith(RESTORE_LOCK) || name.startsWith(RESTORE_MARKER);
}

export function inspectTarget(path: string): TargetState {
  const abs = resolve(path);
  let entries: string[] | null = null;
  try {
    if (!statSync(abs).isDirectory()) {
      throw new PgpitrError('ERR_TARGET', `restore target "${abs}" exists and is not a directory`, { hint: 'give a directory path (-D/--pg-data)' });
    }
    entries = readdirSync(abs);
  } catch (e) {
    if (e instanceof PgpitrError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('read directory', abs, e);
    // A link to nowhere (black-box run X: --dry-run accepted it, the restore failed on mkdir).
    const link = danglingLink(abs);
    if (link !== null) {
      throw new PgpitrError('ERR_TARGET', `restore target "${abs}" is a symbolic link to "${link}", which does not exist`, { hint: `create the directory it leads to (mkdir -p ${shellWord(resolve(dirname(abs), link))}), or give another -D` });
    }
  }
  return {
    path: abs,
    exists: entries !== null,
    // A restore killed while it took its lock, before its marker, left only lock files. A file
    // system's own lost+found, the data directory at its root, is not the directory's content.
    empty: entries === null || entries.every((e) => e.startsWith(RESTORE_LOCK) || (e === 'lost+found' && isMountRoot(abs))),
    isCluster: entries?.includes('PG_VERSION') ?? false,
    runningPid: entries?.includes('postmaster.pid') ? livePostmaster(join(abs, 'postmaster.pid')) : null,
    // Also a restore killed while it wrote its marker (under a temporary name, renamed into place).
    // Not once pg_control is there: a restore killed between writing it (its last file) and removing
    // its marker left a complete cluster, maybe started and used since: a cluster like any other
    // (--delta required, same system), never silently rewritten by the next restore.
    interruptedRestore: (entries?.some((e) => e === RESTORE_MARKER || e.startsWith(`${RESTORE_MARKER}.tmp-`)) ?? false) && !existsSync(join(abs, 'global', 'pg_control')),
    endedRestore: (entries?.some((e) => e === RESTORE_MARKER || e === RESTORE_LOCK) ?? false) && existsSync(join(abs, 'global', 'pg_control')),
  };
}

/** Whether `dir` is the root of a file system mounted there (another device than its parent's). */
export function isMountRoot(dir: string): boolean {
  try {
    return dir === dirname(dir) || statSync(dir).dev !== statSync(dirname(dir)).dev;
  } catch {
    return false;
  }
}

/** Refuses, before anything is written, a target restore cannot use; true when the restore must run as a delta. */
export function checkTarget(t: TargetState, delta: boolean): boolean {
  if (t.runningPid === 0) {
    throw new PgpitrError('ERR_TARGET', `"${join(t.path, 'postmaster.pid')}" cannot be read or names no process: a PostgreSQL server may be running on "${t.path}"`, {
      hint: 'make sure no server runs on that directory, then remove postmaster.pid; restore never writes under a running server',
    });
  }
  if (t.runningPid !== null && t.runningPid < 0) {
    throw new PgpitrError('ERR_TARGET', `"${join(t.path, 'postmaster.pid')}" names pid ${-t.runningPid}, which is not running here, of a server started since this machine did: it may be running in another container or on another host sharing "${t.path}"`, {
      hint: 'make sure no server runs on that directory anywhere (a server that crashed leaves the file behind), then remove postmaster.pid; restore never writes under a running server',
    });
  }
  if (t.runningPid !== null) {
    throw new PgpitrError('ERR_TARGET', `a PostgreSQL server (pid ${t.runningPid}) is running on "${t.path}"`, {
      hint: 'stop it first (pg_ctl stop -D ...); if no server runs there (after a reboot the pid may belong to another process), remove postmaster.pid; restore never writes under a running server',
    });
  }
  if (t.empty) return delta;
  if (t.interruptedRestore) return true;
  if (!delta && t.endedRestore) {
    throw new PgpitrError('ERR_TARGET', `restore target "${t.path}" holds a restore that wrote pg_control, its last file, and was stopped before it removed its ${RESTORE_MARKER} / ${RESTORE_LOCK} (or is ending now): its files are all there`, {
      hint: 'run the same restore again with --delta: it checks every file against the backup, rewrites none that match, and holds the backup for the recovery (as a restore that ends does)',
    });
  }
  if (!delta) {
    throw new PgpitrError('ERR_TARGET', `restore target "${t.path}" exists and is not empty`, {
      hint: 'restore into an empty directory, or give --delta to rewrite only what differs in a stopped cluster',
    });
  }
  if (!t.isCluster) {
    throw new PgpitrError('ERR_TARGET', `--delta target "${t.path}" is not a PostgreSQL data directory (no PG_VERSION)`, {
      hint: '--delta removes what the backup does not hold, so it only works over a data directory; restore into an empty directory instead',
    });
  }
  return true;
}

/**
 * The target looked at again under restore's lock, against what was planned from it: a server
 * started on it meanwhile, or another restore that wrote it while this one planned (the empty
 * directory is a cluster now, which a restore without --delta would write over without removing
 * its pg_control), is refused. Still a delta: still the same system.
 */
export function recheckTarget(planned: TargetState, delta: boolean, requestedDelta: boolean, backupSystem: string | undefined): void {
  const now = inspectTarget(planned.path);
  if (checkTarget(now, requestedDelta) !== delta || now.interruptedRestore !== planned.interruptedRestore) {
    throw new PgpitrError('ERR_TARGET', `restore target "${planned.path}" changed while this restore planned (another restore or a server wrote it)`, { hint: 'look at what it holds now, then run restore again' });
  }
  if (delta && !now.interruptedRestore) checkSameSystem(now.path, backupSystem);
}

/**
 * --delta over a cluster of another database system (a -D typo, another cluster of the host) would
 * remove everything the backup does not hold from it: refused, naming both systems. A data
 * directory without a readable pg_control (damaged, or what is left of one) is not judged.
 */
export function checkSameSystem(path: string, backupSystem: string | undefined): void {
  const theirs = controlSystemIdentifier(path);
  if (theirs === null || backupSystem === undefined || backupSystem === '' || theirs === backupSystem) return;
  throw new PgpitrError('ERR_TARGET', `--delta target "${path}" is a data directory of another database system (system identifier ${theirs}; the backup is of ${backupSystem})`, {
    hint: 'check -D/--pg-data; to replace that cluster with this backup, empty the directory first (restore then writes everything)',
  });
}

export interface TablespaceMapping {
  /** A tablespace name or oid, as given. */
  key: string;
  path: string;
}

/** "OID=PATH" */
export function parseTablespaceMapping(text: string): TablespaceMapping {
  const i = text.indexOf('=');
  const key = i < 0 ? '' : text.slice(0, i);
  const path = i < 0 ? '' : text.slice(i + 1);
  if (key === '' || path === '') throw new PgpitrError('ERR_USAGE', `invalid --tablespace-map "${text}"`, { hint: 'give NAME=PATH or OID=PATH (pgpitr restore --dry-run lists the chosen backup\'s tablespaces: OID, name and where each would go)' });
  if (!isAbsolute(path)) throw new PgpitrError('ERR_USAGE', `--tablespace-map path "${path}" is relative`, { hint: 'give an absolute path' });
  return { key, path };
}

/**
 * A tablespace's directory may hold other clusters' version directories (PG_13_..., kept by
 * pg_upgrade) and a file system's lost+found (a tablespace at a mount point's root) but nothing
 * else; the backup's own version directory only with --delta, and only when this target's
 * pg_tblspc/<oid> already points there (it is this cluster's tablespace, not another cluster's on
 * the same host). A delta with no mapping given (`mapped` false) over a cluster whose tablespace
 * link leads elsewhere (moved since the backup) is refused: it would move it back, whole.
 */
export function checkTablespaceDir(path: string, oid: number, delta: boolean, ownVersionDir: string | null, targetLink: string, mapped = true): void {
  const link = linkOf(targetLink);
  if (delta && !mapped && link !== null && !samePath(link, path)) {
    throw new PgpitrError('ERR_TARGET', `tablespace ${oid} of the cluster in the target is at "${link}" (${targetLink}), the backup's at "${path}"`, {
      hint: `give --tablespace-map ${shellWord(`${oid}=${link}`)} to restore it where it is now (or ${shellWord(`${oid}=${path}`)} to move it back)`,
    });
  }
  if (!existsSync(path)) return;
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (e) {
    throw storageError('read directory', path, e);
  }
  // Files no tablespace holds (a README, a copy left there): named, to be moved aside; never "empty
  // that directory", which may hold a live cluster's version directory too.
  const foreign = entries.filter((n) => !n.startsWith('PG_') && n !== 'lost+found');
  if (foreign.length > 0) {
    const named = foreign.slice(0, 3).map((n) => JSON.stringify(n)).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '');
    throw new PgpitrError('ERR_TARGET', `tablespace ${oid}'s directory "${path}" exists and is not empty: it holds ${named}, which no tablespace holds`, {
      hint: 'move them aside (a tablespace directory holds only PG_<version>_<catalog> directories), or map the tablespace to an empty directory with --tablespace-map NAME=PATH',
    });
  }
  if (ownVersionDir === null || !entries.includes(ownVersionDir)) return;
  if (!delta) {
    throw new PgpitrError('ERR_TARGET', `tablespace ${oid}'s directory "${path}" exists and is not empty: it holds ${ownVersionDir}, this backup's version directory (another cluster's of the same version, or the one restored over)`, {
      hint: 'map the tablespace to an empty directory with --tablespace-map NAME=PATH, or give --delta to restore over the cluster whose tablespace it is',
    });
  }
  // No link: not this cluster's. One spelt otherwise (a trailing slash, through a link) is.
  if (link === null) {
    throw new PgpitrError('ERR_TARGET', `tablespace ${oid}'s directory "${path}" holds ${ownVersionDir}, and ${targetLink} is missing: restore cannot tell whether it is the tablespace of the cluster restored over or another cluster's`, {
      hint: `if it is this cluster's, put its link back (ln -s ${path} ${targetLink}) and run the restore again; otherwise map the tablespace to an empty directory with --tablespace-map OID=PATH`,
    });
  }
  if (!samePath(link, path)) {
    throw new PgpitrError('ERR_TARGET', `tablespace ${oid}'s directory "${path}" holds ${ownVersionDir} of another cluster (${targetLink} does not point there)`, {
      hint: 'map the tablespace to an empty directory with --tablespace-map OID=PATH; --delta only rewrites the tablespaces of the cluster it restores over',
    });
  }
}

/**
 * A delta that maps a tablespace elsewhere than the target's link leads: the old location, when it
 * still holds the backup's version directory (the restored cluster no longer uses it; said, not removed).
 */
export function tablespaceLeftBehind(path: string, ownVersionDir: string | null, targetLink: string): string | null {
  const link = linkOf(targetLink);
  if (link === null || ownVersionDir === null || samePath(link, path)) return null;
  const old = isAbsolute(link) ? link : resolve(dirname(targetLink), link);
  return existsSync(join(old, ownVersionDir)) ? old : null;
}

/** Where a symbolic link leads (as written), null when there is none. */
function linkOf(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** The same directory, however spelt (a trailing slash, a link on the way). */
function samePath(a: string, b: string): boolean {
  return resolve(a) === resolve(b) || realPathOf(a) === realPathOf(b);
}

/** Whether path a is b or inside it (by path, after resolving both). */
export function within(a: string, b: string): boolean {
  const r = relative(resolve(b), resolve(a));
  // Not "starts with ..": a name such as "..ts" inside b is inside it.
  return r === '' || (r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r));
}

/** Where pg_wal's link leads in a target, as the kernel resolves it; null when pg_wal is not a link (or leads nowhere). */
export function walLinkOf(target: string): string | null {
  try {
    if (!lstatSync(join(target, 'pg_wal')).isSymbolicLink()) return null;
    return realpathSync(join(target, 'pg_wal'));
  } catch {
    return null;
  }
}

/**
 * A path as the kernel resolves it: its nearest existing ancestor's real path, and the rest as
 * written (a directory restore will create under a link still lands where the link leads).
 */
export function realPathOf(path: string): string {
  const abs = resolve(path);
  const rest: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    try {
      return join(realpathSync(p), ...rest.reverse());
    } catch {
      if (dirname(p) === p) return abs;
      rest.push(basename(p));
    }
  }
}

/**
 * Refuses a place restore would write (`places`: what, path) that is a repository's directory, or
 * inside or above one: restored files in a repository are plaintext in an encrypted one, are
 * removed by expire where they lie in its tree, and a delta there would remove the repository's.
 */
export function refuseInsideRepository(places: readonly (readonly [string, string])[], repositories: readonly string[]): void {
  for (const [what, path] of places) {
    const repo = repositories.find((r) => overlaps(path, r));
    if (repo !== undefined) {
      throw new PgpitrError('ERR_USAGE', `${what} "${path}" ${within(path, repo) || within(realPathOf(path), realPathOf(repo)) ? 'is inside' : 'holds'} the repository "${repo}"`, { hint: 'restore somewhere outside the repository (-D, --tablespace-map, --waldir)' });
    }
  }
}

/** Whether either of two paths is the other or inside it, as written or as the kernel resolves them. */
export function overlaps(a: string, b: string): boolean {
  const ra = realPathOf(a);
  const rb = realPathOf(b);
  return within(a, b) || within(b, a) || within(ra, rb) || within(rb, ra);
}

/**
 * The directory pg_wal links to (--waldir): absent or empty, or, with --delta, the one this
 * target's pg_wal already leads to (its old WAL files are then removed, and only those: a segment
 * left there could be replayed in place of the archive's).
 */
export function checkWalDir(path: string, delta: boolean, target: string): void {
  if (!isAbsolute(path)) throw new PgpitrError('ERR_USAGE', `--waldir "${path}" is relative`, { hint: 'give an absolute path' });
  const real = realPathOf(path);
  if (real === '/' || overlaps(path, target)) {
    throw new PgpitrError('ERR_USAGE', `--waldir "${path}" is inside the data directory "${target}", or holds it`, { hint: 'give a directory of its own, outside the data directory' });
  }
  // pg_wal becomes a link to it: a pg_wal that is a mount point cannot be replaced (said before anything is written).
  const wal = join(target, 'pg_wal');
  const walSt = lstatSync(wal, { throwIfNoEntry: false });
  if (walSt?.isDirectory() && walSt.dev !== statSync(target, { throwIfNoEntry: false })?.dev) {
    throw new PgpitrError('ERR_TARGET', `${wal} is a mount point: --waldir would replace it by a link to "${path}"`, {
      hint: 'restore without --waldir (pg_wal stays on its own file system), or unmount it first',
    });
  }
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw storageError('read directory', path, e);
  }
  if (entries.length === 0) return;
  if (delta && walLinkOf(target) === real) return;
  throw new PgpitrError('ERR_TARGET', `WAL directory "${path}" exists and is not empty${delta ? ` (and ${join(target, 'pg_wal')} does not lead there)` : ''}`, {
    hint: 'give an empty directory to --waldir; with --delta, the directory the cluster\'s pg_wal already links to',
  });
}

/** Names of WAL files and directories in pg_wal: the only ones a restore removes from a WAL directory of its own. */
export function isWalName(name: string): boolean {
  return /^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$/.test(name) || /^[0-9A-F]{8}\.history$/.test(name) || /^xlogtemp\.\d+$/.test(name) || name === 'archive_status' || name === 'summaries';
}

/**
 * --tablespace-map keys as the backup's tablespace oids: an oid of the backup, else a name its record
 * gives that oid (names are recorded from 2026-12-06 on). A key naming none of its tablespaces, or
 * a tablespace given twice (by name and by oid), is refused before anything is judged.
 */
export function tablespaceMapByOid(given: readonly TablespaceMapping[], held: readonly { oid: number }[], names: readonly { oid: number; name: string }[] | undefined, backupId: string): TablespaceMapping[] {
  const out = given.map((t) => {
    if (/^\d+$/.test(t.key) && held.some((ts) => String(ts.oid) === t.key)) return t;
    const named = names?.find((n) => n.name === t.key && held.some((ts) => ts.oid === n.oid));
    if (named === undefined) {
      const list = held
        .map((ts) => {
          const n = names?.find((x) => x.oid === ts.oid);
          return n ? `${ts.oid} (${n.name})` : String(ts.oid);
        })
        .join(', ');
      throw new PgpitrError('ERR_USAGE', `--tablespace-map names tablespace "${t.key}", which backup ${backupId} does not hold`, {
        hint: `its tablespaces: ${list || 'none'}${names === undefined ? ' (its record predates tablespace names: give oids)' : ''}`,
      });
    }
    return { key: String(named.oid), path: t.path };
  });
  const twice = out.find((t, i) => out.findIndex((u) => u.key === t.key) !== i);
  if (twice) throw new PgpitrError('ERR_USAGE', `--tablespace-map gives tablespace ${twice.key} twice (by name and by oid)`, { hint: 'give each tablespace one directory' });
  return out;
}

/** Where `path` links to when it is a symbolic link whose target is missing; else null. */
function danglingLink(path: string): string | null {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
  } catch {
    return null;
  }
}
