// Registering a backup with the server through the non-exclusive low-level API,
// on one SQL session that stays open for the whole backup: the server ends the
// backup by itself when that session goes away, so a failure anywhere (ours, the
// network's, a signal) never leaves it in backup mode. 15 renamed the functions
// (pg_backup_start/pg_backup_stop) and dropped the exclusive flag.

import type { SqlClient } from '../../protocol/sql-client.js';
import { PgpitrError, ServerError } from '../../common/errors.js';

export interface BackupStop {
  /** The backup's end LSN (pg_backup_stop's lsn). */
  lsn: string;
  /** The backup_label content to write into the backup. */
  labelFile: string;
  /** The tablespace_map content ('' without tablespaces). */
  tablespaceMap: string;
}

export async function startLowLevelBackup(client: SqlClient, serverVersionNum: number, label: string, fastCheckpoint: boolean): Promise<string> {
  const sql = serverVersionNum >= 150000 ? 'SELECT pg_backup_start($1, $2)::text AS lsn' : 'SELECT pg_start_backup($1, $2, false)::text AS lsn';
  const r = await client.query<{ lsn: string }>(sql, [label, fastCheckpoint]).catch((e: unknown) => {
    throw refused(e, 'could not start the backup');
  });
  const lsn = r.rows[0]?.lsn;
  if (!lsn) throw new PgpitrError('ERR_PROTOCOL', 'the server returned no start LSN for the backup');
  return lsn;
}

export async function stopLowLevelBackup(client: SqlClient, serverVersionNum: number, waitForArchive: boolean): Promise<BackupStop> {
  const sql =
    serverVersionNum >= 150000
      ? 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop($1)'
      : 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_stop_backup(false, $1)';
  const r = await client.query<{ lsn: string; labelfile: string | null; spcmapfile: string | null }>(sql, [waitForArchive]).catch((e: unknown) => {
    throw refused(e, 'could not stop the backup');
  });
  const row = r.rows[0];
  if (!row?.lsn || !row.labelfile) throw new PgpitrError('ERR_PROTOCOL', 'the server returned no end LSN or backup_label for the backup');
  return { lsn: row.lsn, labelFile: row.labelfile, tablespaceMap: row.spcmapfile ?? '' };
}

/** The timeline a backup_label says the backup started on ("START TIMELINE: n", written by 11 and later). */
export function labelStartTimeline(labelFile: string): number | null {
  const m = /^START TIMELINE: (\d+)$/m.exec(labelFile);
  return m ? Number(m[1]) : null;
}

/**
 * The server refusing the call (an ERROR: say a standby promoted during the backup) as our
 * ServerError, with its SQLSTATE and hint (exit 4). Anything else, such as the session ended
 * by a FATAL, is left as it is for run-parallel.ts, which tells a lost session apart.
 */
function refused(e: unknown, context: string): unknown {
  const f = e as { severity?: unknown; code?: unknown; detail?: unknown; hint?: unknown };
  if (!(e instanceof Error) || f.severity !== 'ERROR' || typeof f.code !== 'string') return e;
  return new ServerError(
    {
      severity: 'ERROR',
      sqlState: f.code,
      message: e.message,
      ...(typeof f.detail === 'string' ? { detail: f.detail } : {}),
      ...(typeof f.hint === 'string' ? { hint: f.hint } : {}),
    },
    context,
  );
}
