// Selective restore (--db-include, --db-exclude): the databases left out are
// not read from the repository; their files are written as sparse files of
// zeros of the recorded size, so that recovery finds every file it expects
// (a page it replays is rebuilt from the full-page image WAL carries after
// each checkpoint) and the cluster starts. Those databases cannot be used and
// are to be dropped once the server is up. template0, template1 and postgres
// are always restored: the cluster needs them. A database the backup does not
// list (one that takes no connections, as template0) is restored too. A
// standby is never restored in part: it would never end recovery, so the
// databases left out could never be dropped there.

import { PgpitrError, usageError } from '../common/errors.js';
import type { PageImages } from '../repo/backup-set/record.js';

export interface DatabaseChoice {
  include: readonly string[];
  exclude: readonly string[];
}

export interface RecordedDatabase {
  name: string;
  oid: number;
}

const SYSTEM = new Set(['template0', 'template1', 'postgres']);

/** The databases left out, or none when neither option is given; refuses names the backup does not hold. */
export function databasesLeftOut(backupId: string, databases: readonly RecordedDatabase[], choice: DatabaseChoice): RecordedDatabase[] {
  if (choice.include.length === 0 && choice.exclude.length === 0) return [];
  if (choice.include.length > 0 && choice.exclude.length > 0) throw usageError('--db-include and --db-exclude are given together', 'give the databases to restore (--db-include) or those to leave out (--db-exclude)');
  if (databases.length === 0) {
    throw new PgpitrError('ERR_NOT_FOUND', `backup ${backupId} does not record its databases, so it cannot be restored in part`, { hint: 'restore it whole, or choose a newer backup with --set' });
  }
  const system = choice.exclude.find((g) => SYSTEM.has(g));
  if (system !== undefined) throw usageError(`--db-exclude ${system}: the cluster needs it, it is always restored`, 'leave out only user databases');
  const find = (given: string, option: string): RecordedDatabase => {
    const d = databases.find((x) => x.name === given) ?? (/^\d+$/.test(given) ? databases.find((x) => String(x.oid) === given) : undefined);
    if (d) return d;
    // Another backup (of another repository) may hold it: not a usage error.
    throw new PgpitrError('ERR_NOT_FOUND', `${option} ${given}: backup ${backupId} holds no such database (or not one that takes connections)`, {
      hint: `its databases: ${databases.map((x) => `${x.name} (oid ${x.oid})`).join(', ')}`,
    });
  };
  if (choice.include.length > 0) {
    const kept = new Set(choice.include.map((g) => find(g, '--db-include').oid));
    return databases.filter((d) => !kept.has(d.oid) && !SYSTEM.has(d.name));
  }
  const out = choice.exclude.map((g) => find(g, '--db-exclude'));
  const needed = out.find((d) => SYSTEM.has(d.name));
  if (needed) throw usageError(`--db-exclude ${needed.name}: the cluster needs it, it is always restored`, 'leave out only user databases');
  return [...new Map(out.map((d) => [d.oid, d])).values()];
}

/** Whether a cluster path is a file of one of these databases (base/OID/..., or in a tablespace pg_tblspc/T/PG_.../OID/...). */
export function inDatabases(path: string, oids: ReadonlySet<number>): boolean {
  if (oids.size === 0) return false;
  const m = /^base\/(\d+)\/[^/]+$/.exec(path) ?? /^pg_tblspc\/\d+\/[^/]+\/(\d+)\/[^/]+$/.exec(path);
  return m !== null && oids.has(Number(m[1]));
}

/**
 * Why recovery could meet a page of a database left out that WAL changes without its image
 * (PostgreSQL then stops: "WAL contains references to invalid pages"), or null.
 */
export function pageImageRisk(images: PageImages | undefined, leftOut: readonly RecordedDatabase[]): string | null {
  if (images === undefined) return 'its record does not say whether WAL gives the image of every page it changes (it was taken by an older pgpitr; a new backup records it)';
  if (images.full_page_writes === null) return "it was taken from a standby that could not read the primary's full_page_writes (pg_control_checkpoint() was refused to the backup's role)";
  if (!images.full_page_writes) return 'its server ran with full_page_writes off, so WAL changes pages without their image';
  if (!images.data_checksums && images.wal_log_hints === false) return 'its server has neither data checksums nor wal_log_hints, so WAL marks pages all-visible without their image';
  if (!images.data_checksums && images.wal_log_hints === null) return "it was taken from a standby without data checksums, and whether the primary logs hint bits (wal_log_hints) is not known there: WAL may mark pages all-visible without their image";
  const named = (oids: readonly number[] | undefined) => leftOut.filter((d) => oids?.includes(d.oid)).map((d) => d.name);
  if (images.hash_index_databases === undefined) return 'its record does not say which databases hold hash indexes';
  const hash = named(images.hash_index_databases);
  if (hash.length > 0) return `database(s) ${hash.join(', ')} hold hash indexes, whose cleanup WAL changes a page without its image`;
  const unchecked = named(images.unchecked_databases);
  if (unchecked.length > 0) return `database(s) ${unchecked.join(', ')} could not be checked for hash indexes when the backup was taken`;
  return null;
}
