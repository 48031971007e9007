// Where things live in a repository (docs/repository-format.md), as paths
// relative to the repository's storage (repository.ts):
//   <repo>/pgpitr-repo.json                        repository marker and format version
//   <repo>/pgpitr-repo.json.copy                   its copy (repo-marker.ts)
//   <repo>/<stanza>/stanza.json                    system identifier, version, WAL segment size
//   <repo>/<stanza>/archive/<TTTTTTTTXXXXXXXX>/<segment>-<sha256>[.gz|.lz4|.zst]
//   <repo>/<stanza>/archive/<file>-<sha256>[...]   timeline .history files
//   <repo>/<stanza>/archive/<TTTTTTTTXXXXXXXX>/<segment>.<offset>.backup-<sha256>[...]
//   <repo>/<stanza>/restore-points/<TTTTTTTTXXXXXXXX>/<segment>-<sha256>.json   what a segment holds of restore points
// The SHA-256 in a name is that of the original (uncompressed) file.

import { PgpitrError } from '../common/errors.js';
import { storageJoin } from '../storage/storage-path.js';

export const REPO_MARKER = 'pgpitr-repo.json';
/** The marker's copy: an encrypted repository's wrapped key must survive one damaged file. */
export const REPO_MARKER_COPY = 'pgpitr-repo.json.copy';
export const REPO_FORMAT_VERSION = 1;

/** The longest stanza name: a directory name, with room for the temporary names made beside it. */
const STANZA_NAME_MAX = 128;

/** A stanza's directory; the name is checked (it becomes a path). */
export function stanzaPath(stanza: string): string {
  // A name no directory can have (longer than a file name may be), or one of the repository's own
  // files: no stanza can be there (checkNewStanzaName keeps new ones further from them).
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(stanza) || stanza === '.' || stanza === '..' || stanza.length > 255) {
    throw new PgpitrError('ERR_USAGE', `invalid stanza name "${stanza.length > STANZA_NAME_MAX ? `${stanza.slice(0, 20)}...` : stanza}"`, { hint: `use letters, digits, "_", "-" and ".", at most ${STANZA_NAME_MAX} of them` });
  }
  if (stanza === REPO_MARKER || stanza === REPO_MARKER_COPY || stanza === REPOSITORY_LOCK) {
    throw new PgpitrError('ERR_USAGE', `invalid stanza name "${stanza}": the repository uses that name for its own file`, { hint: 'choose another name' });
  }
  return stanza;
}

/** A new stanza's name: also at most STANZA_NAME_MAX characters, and not like the temporary files the repository makes beside its own. */
export function checkNewStanzaName(stanza: string): void {
  stanzaPath(stanza);
  if (stanza.length > STANZA_NAME_MAX || stanza.startsWith('pgpitr-probe-') || /\.tmp-/.test(stanza) || stanza.startsWith(`${REPOSITORY_LOCK}.`)) {
    throw new PgpitrError('ERR_USAGE', `invalid stanza name "${stanza.length > STANZA_NAME_MAX ? `${stanza.slice(0, 20)}...` : stanza}" for a new stanza`, { hint: `use at most ${STANZA_NAME_MAX} letters, digits, "_", "-" and ".", not beginning with "pgpitr-probe-" nor holding ".tmp-" (names of the repository's own files)` });
  }
}

export const STANZA_RECORD = 'stanza.json';

/** Where receive-wal keeps the segment it receives (and whole ones not yet stored), in a posix repository. */
export const RECEIVER_DIR = 'receive-wal';

export function stanzaRecordPath(stanza: string): string {
  return storageJoin(stanzaPath(stanza), STANZA_RECORD);
}

/** The stanza's WAL archive. */
export function archivePath(stanza: string): string {
  return storageJoin(stanzaPath(stanza), 'archive');
}

/** The directory of the archive holding a WAL file (history files at its top). */
export function walFileDirPath(stanza: string, name: string): string {
  return storageJoin(archivePath(stanza), walFileSubdir(name));
}

/** Records of WAL that asynchronous archive-push dropped (drops.ts). */
export function dropsPath(stanza: string): string {
  return storageJoin(stanzaPath(stanza), 'archive-drops');
}

/** Where expire left WAL out on purpose between standalone backups' ranges (expired-holes.ts). */
export function expiredHolesPath(stanza: string): string {
  return storageJoin(stanzaPath(stanza), 'archive-expired.json');
}

/** The restore point index (restore-point-index.ts). */
export function restorePointIndexPath(stanza: string): string {
  return storageJoin(stanzaPath(stanza), 'restore-points');
}

/** Restores' leases on backups, and expire's marker (restore-lease.ts). */
export function restoreLeasePath(stanza: string): string {
  return storageJoin(stanzaPath(stanza), 'restore-lease');
}

/** The lock of commands that change the repository as a whole (stanza-create). */
export const REPOSITORY_LOCK = 'repository.lock';

/**
 * Whether path is one of the repository's locks (repository.lock, <stanza>/backup.lock) or the
 * guard of a takeover of one (lock.ts): these alone, not any object whose name ends in ".lock"
 * (a cluster's file of that name stored in a backup is data).
 */
export function isRepositoryLockPath(path: string): boolean {
  return /^(?:repository|[^/]+\/backup)\.lock(?:\.takeover\.lock)?$/.test(path);
}

/** The lock of commands that change a stanza's backups (backup, expire). */
export function backupLockPath(stanza: string): string {
  return storageJoin(stanzaPath(stanza), 'backup.lock');
}

/** Kinds of files PostgreSQL hands to archive_command. */
export type WalFileKind = 'segment' | 'partial' | 'history' | 'backup';

export function walFileKind(name: string): WalFileKind | null {
  if (/^[0-9A-F]{24}$/.test(name)) return 'segment';
  if (/^[0-9A-F]{24}\.partial$/.test(name)) return 'partial';
  if (/^[0-9A-F]{8}\.history$/.test(name)) return 'history';
  if (/^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/.test(name)) return 'backup';
  return null;
}

/** The directory (relative to the archive) holding a WAL file. */
export function walFileSubdir(name: string): string {
  return walFileKind(name) === 'history' ? '' : name.slice(0, 16);
}

export function storedName(name: string, sha256: string, extension: string): string {
  return `${name}-${sha256}${extension}`;
}

/** The timeline of a stored history file (an entry of the archive's top level), or null for any other entry. */
export function storedHistoryTimeline(stored: string): number | null {
  const h = /^([0-9A-F]{8})\.history$/.exec(parseStoredName(stored)?.name ?? '');
  return h ? parseInt(h[1]!, 16) : null;
}

/** Splits a stored name back into WAL file name, checksum and extension; null if it is not one. */
export function parseStoredName(stored: string): { name: string; sha256: string; extension: string } | null {
  const m = /^(.+)-([0-9a-f]{64})(\.gz|\.lz4|\.zst)?$/.exec(stored);
  if (!m || walFileKind(m[1]!) === null) return null;
  return { name: m[1]!, sha256: m[2]!, extension: m[3] ?? '' };
}
