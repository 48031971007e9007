// What BASE_BACKUP leaves out of a backup, and which files it verifies page
// checksums in, for servers 13-18 (sendDir / sendFile / is_checksummed_file in
// src/backend/replication/basebackup.c (13-14) and src/backend/backup/
// basebackup.c (15-18)), so a backup that reads PGDATA itself sends what the
// server would. Paths are relative to the data directory, '/'-separated;
// tablespace contents are "pg_tblspc/<oid>/<PG_major_catversion>/...".
//
// Where each rule applies:
// - by entry NAME, at every level (PGDATA and tablespaces alike): temporary
//   files and directories (pgsql_tmp prefix), the excluded files (so the
//   pg_internal.init of every database directory), the directories sent empty
//   (a "pg_notify" anywhere is sent empty), .DS_Store (15+);
// - by PATH: pg_wal (top level only), the stats_temp_directory of 13-14,
//   symlinks (kept only directly in pg_tblspc), global/pg_control (sent last);
// - in DATABASE DIRECTORIES only (base/<oid>, <tablespace version dir>/<oid>):
//   temporary relations, and unlogged relations' non-init forks (unloggedToSkip,
//   which needs the directory's other names).

import { isTemporaryRelationFileName, parseRelationFileName } from './relation-file-name.js';

export type EntryKind = 'file' | 'directory' | 'link';

/**
 * 'include': back it up (a directory: walk it); 'skip': leave it out
 * entirely; 'empty-directory': send the directory (or a symlink to one, as a
 * directory) without any of its contents.
 */
export type EntryDecision = 'include' | 'skip' | 'empty-directory';

export interface ExclusionOptions {
  /**
   * 13-14 only: the stats_temp_directory setting as the server reports it
   * (relative to the data directory, or absolute). Its contents are left out
   * like pg_stat_tmp's; 15+ has no such setting.
   */
  statsTempDirectory?: string;
  /** The data directory's absolute path, to place an absolute statsTempDirectory in it. */
  dataDirectory?: string;
  /**
   * The server's own tablespace version directory ("PG_15_202209061"). Only it
   * is backed up from a tablespace; other versions' directories next to it are
   * not. Without it, any "PG_<major>_<digits>" of this server's major is taken.
   */
  tablespaceVersionDirectory?: string;
}

/** The control file: backed up, but after every other file (the server sends it last). */
export const CONTROL_FILE = 'global/pg_control';

/** Names whose contents are removed or rebuilt at server start: sent as empty directories (excludeDirContents). */
export const EXCLUDED_DIRECTORY_CONTENTS: readonly string[] = [
  'pg_stat_tmp', // PG_STAT_TMP_DIR, also in 15+ (extensions such as pg_stat_statements write there)
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_subtrans',
];

/** excludeFiles: names matched exactly. The same list in 13-18. */
export const EXCLUDED_FILES: readonly string[] = [
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  // Should not exist on a server able to take an online backup; the backup writes its own.
  'backup_label',
  'tablespace_map',
  // One here belongs to the backup this server was restored from, not to this one.
  'backup_manifest',
  'postmaster.pid',
  'postmaster.opts',
];

/** excludeFiles entries matched as a prefix: the relcache init file and its temporary files. */
export const EXCLUDED_FILE_PREFIXES: readonly string[] = ['pg_internal.init'];

/** PG_TEMP_FILE_PREFIX: temporary files and directories, skipped at every level. */
export const TEMP_FILE_PREFIX = 'pgsql_tmp';

/**
 * The directories the server adds, empty, when it meets pg_wal (with pg_wal's
 * own permissions, whether or not they exist): archive_status, and summaries
 * (WAL summaries for incremental backup) from 17.
 */
export function walEmptySubdirectories(serverVersionNum: number): string[] {
  return serverVersionNum >= 170000 ? ['pg_wal/archive_status', 'pg_wal/summaries'] : ['pg_wal/archive_status'];
}

/**
 * What BASE_BACKUP does with one entry found while walking the data directory
 * or a tablespace (kind from lstat: a symlink is 'link'). Unlogged relation
 * forks need the directory's other names: see unloggedToSkip.
 *
 * Deliberate difference: for a regular FILE named like one of the directories
 * sent empty (pg_wal at the top, pg_notify anywhere...) the server writes the
 * file's tar header without its data (a broken member); we say 'skip'.
 * Tablespaces are taken to be symlinks in pg_tblspc; the contents of an
 * in-place tablespace (a directory there, a developer option of 15+) are
 * walked by the server like any directory, not limited to a version directory.
 */
export function excludedEntry(
  relPath: string,
  kind: EntryKind,
  serverVersionNum: number,
  opts: ExclusionOptions = {},
): EntryDecision {
  const parts = relPath.split('/');
  const name = parts[parts.length - 1]!;
  const parent = parts.slice(0, -1).join('/');

  if (name.startsWith(TEMP_FILE_PREFIX)) return 'skip';
  // A backpatched fix: present in 15.18, 16.14, 17.10 and 18.4, absent from 13.23 and 14.23.
  if (serverVersionNum >= 150000 && name === '.DS_Store') return 'skip';
  if (EXCLUDED_FILES.includes(name) || EXCLUDED_FILE_PREFIXES.some((p) => name.startsWith(p))) return 'skip';
  if (isDatabaseDirectory(parent) && isTemporaryRelationFileName(name)) return 'skip';

  const emptyDir: EntryDecision = kind === 'file' ? 'skip' : 'empty-directory';
  if (EXCLUDED_DIRECTORY_CONTENTS.includes(name)) return emptyDir;
  if (serverVersionNum < 150000 && relPath === statsTempRelPath(opts)) return emptyDir;
  if (relPath === 'pg_wal') return emptyDir;

  // Only a tablespace's link is kept; any other symlink is "skipping special file".
  if (kind === 'link') return parent === 'pg_tblspc' ? 'include' : 'skip';

  // From a tablespace location the server sends only its own version directory.
  if (parts.length === 3 && parts[0] === 'pg_tblspc' && !isOwnVersionDirectory(name, serverVersionNum, opts)) {
    return 'skip';
  }
  return 'include';
}

/**
 * Unlogged relations: in a database directory, the names to leave out of
 * `names` (that directory's entries): every fork and segment of a relation
 * that has an init fork ("<relfilenode>_init"), except the init forks
 * themselves, which restore recreates the relation from.
 */
export function unloggedToSkip(names: Iterable<string>, serverVersionNum: number): Set<string> {
  const all = names instanceof Set ? (names as Set<string>) : new Set(names);
  const out = new Set<string>();
  for (const name of all) {
    const rel = parseRelationFileName(name, serverVersionNum);
    if (rel === null || rel.fork === 'init') continue;
    // The server looks up "<relfilenode>_init" only: segment 0 of the init fork.
    if (all.has(`${rel.relNumber}_init`)) out.add(name);
  }
  return out;
}

/**
 * A database directory (where relation files live): base/<digits>, or
 * <digits> inside a tablespace version directory. (The server's test compares
 * only as many characters of "./base" as the parent path has, so a top-level
 * all-digit directory, or one under "b", "ba", "bas", passes too; no real data
 * directory has one, and we do not copy that quirk.)
 */
export function isDatabaseDirectory(relPath: string): boolean {
  return /^base\/[0-9]+$/.test(relPath) || /^pg_tblspc\/[^/]+\/PG_[0-9]+_[0-9]+\/[0-9]+$/.test(relPath);
}

/** noChecksumFiles of 13-16 (config_exec_params too on EXEC_BACKEND builds, i.e. Windows). */
const NO_CHECKSUM_FILES: readonly string[] = ['pg_control', 'pg_filenode.map', 'PG_VERSION'];
const NO_CHECKSUM_PREFIXES: readonly string[] = ['pg_internal.init'];

/**
 * Whether BASE_BACKUP verifies page checksums in this file (when the cluster
 * has them and the client did not ask otherwise). Versions differ:
 * - 13-16 (is_checksummed_file): every file under global/, base/ or a
 *   tablespace, at any depth, except pg_control, pg_filenode.map, PG_VERSION
 *   and pg_internal.init*;
 * - 17-18: only relation files (as parseRelationFileName reads them, so with a
 *   relfilenode > 0 and no leading zeros) directly in global/ or a database
 *   directory.
 * Files the backup skips never get here (pgsql_tmp*, temporary relations...).
 */
export function isChecksummedFile(relPath: string, serverVersionNum: number): boolean {
  const slash = relPath.lastIndexOf('/');
  const name = relPath.slice(slash + 1);
  const parent = slash < 0 ? '' : relPath.slice(0, slash);
  if (serverVersionNum >= 170000) {
    if (parent !== 'global' && !isDatabaseDirectory(parent)) return false;
    return parseRelationFileName(name, serverVersionNum) !== null;
  }
  const inTablespace =
    relPath.startsWith('global/') || relPath.startsWith('base/') || /^pg_tblspc\/[^/]+\/[^/]+\//.test(relPath);
  if (!inTablespace) return false;
  return !NO_CHECKSUM_FILES.includes(name) && !NO_CHECKSUM_PREFIXES.some((p) => name.startsWith(p));
}

/** Where the server looks for stats_temp_directory, as a relPath (its statrelpath without "./"). */
function statsTempRelPath(opts: ExclusionOptions): string | undefined {
  const dir = opts.statsTempDirectory;
  if (dir === undefined || dir === '') return undefined;
  if (dir.startsWith('/')) {
    const data = opts.dataDirectory;
    // The server tests a plain string prefix; a directory outside PGDATA never matches a relPath.
    if (data === undefined || !dir.startsWith(data)) return undefined;
    return dir.slice(data.length + 1);
  }
  return dir.startsWith('./') ? dir.slice(2) : dir;
}

function isOwnVersionDirectory(name: string, serverVersionNum: number, opts: ExclusionOptions): boolean {
  if (opts.tablespaceVersionDirectory !== undefined) return name === opts.tablespaceVersionDirectory;
  return new RegExp(`^PG_${Math.floor(serverVersionNum / 10000)}_[0-9]+$`).test(name);
}
