// What a backup records so that restore can tell whether leaving a database out
// (restore --db-include/--db-exclude: its files become zeros) is safe: whether
// the WAL written after the backup gives the image of every page it changes.
// It does not when full_page_writes is off; when neither data checksums nor
// wal_log_hints are on (a page set all-visible is logged without its image);
// and, whatever the settings, for hash indexes (their cleanup logs the bucket
// page without its image). From a standby, what counts is the primary's
// settings: full_page_writes comes from the last checkpoint (the primary's),
// wal_log_hints is not known there (no SQL function shows the control file's).

import type { ConnectionSettings } from '../../protocol/conninfo.js';
import type { SqlClient } from '../../protocol/sql-client.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import type { PageImages } from '../../repo/backup-set/record.js';

/** Per-database connections give up after this long unless the connection says otherwise. */
const DATABASE_CONNECT_TIMEOUT_S = 10;

/**
 * Called once the backup has ended: a hash index existing when the backup started still exists
 * then, unless dropped meanwhile (and then replay drops it too); one created after the start has
 * its pages in the WAL.
 */
export async function pageImageFacts(sql: SqlClient, connection: ConnectionSettings, databases: readonly { name: string; oid: number }[]): Promise<PageImages> {
  const r = await sql.query<{ c: string; h: string; fpw: string; standby: boolean }>(
    `select current_setting('data_checksums') as c, current_setting('wal_log_hints') as h, current_setting('full_page_writes') as fpw, pg_is_in_recovery() as standby`,
  );
  const row = r.rows[0]!;
  const checkpointFpw = await lastCheckpointFullPageWrites(sql);
  const hashIndexes: number[] = [];
  const unchecked: number[] = [];
  for (const d of databases) {
    try {
      const c = await openSqlClient({ ...connection, dbname: d.name, connect_timeout: connection.connect_timeout ?? DATABASE_CONNECT_TIMEOUT_S }, 'pgpitr backup');
      try {
        const h = await c.query<{ any: boolean }>(`select exists (select 1 from pg_class c join pg_am a on a.oid = c.relam where a.amname = 'hash') as any`);
        if (h.rows[0]?.any) hashIndexes.push(d.oid);
      } finally {
        await c.end();
      }
    } catch {
      unchecked.push(d.oid); // no CONNECT privilege, too many connections...: not known
    }
  }
  return {
    data_checksums: row.c === 'on',
    wal_log_hints: row.standby ? null : row.h === 'on',
    // The last checkpoint's (the primary's, from a standby); on a primary also the setting now (turned off since?).
    // Without the checkpoint's (the function refused to this role), a standby's is not known.
    full_page_writes: row.standby ? checkpointFpw : checkpointFpw !== false && row.fpw === 'on',
    hash_index_databases: hashIndexes,
    unchecked_databases: unchecked,
  };
}

/** full_page_writes as the last checkpoint recorded it; null when pg_control_checkpoint() cannot be run (EXECUTE revoked). */
async function lastCheckpointFullPageWrites(sql: SqlClient): Promise<boolean | null> {
  try {
    const r = await sql.query<{ f: boolean }>('select (pg_control_checkpoint()).full_page_writes as f');
    return r.rows[0]?.f ?? null;
  } catch {
    return null;
  }
}
