// What a repository backup asks the server before it chooses how to back up: its version,
// whether it is a standby, its clock, its system and timeline (choosePrior, resume); and once the
// server has ended the backup, its clock and next transaction (stopFacts).

import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import type { SqlClient } from '../../protocol/sql-client.js';
import { Session } from '../../protocol/session.js';
import type { ServerNow } from './prior-choice.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';
import type { StanzaInfo } from '../../repo/stanza.js';
import { parseSizeSetting } from '../../postgres/settings.js';
import { PgpitrError } from '../../common/errors.js';
import { stanzaMismatch } from '../../repo/stanza-match.js';

/** The server's version, whether it is a standby, and its clock now. */
export async function serverFacts(sql: SqlClient): Promise<Pick<ServerNow, 'pgVersionNum' | 'backupFrom' | 'clockMs'>> {
  const row = (await sql.query<{ v: string; standby: boolean; now: string }>(
    `select current_setting('server_version_num') as v, pg_is_in_recovery() as standby, extract(epoch from clock_timestamp())::text as now`,
  )).rows[0]!;
  return { pgVersionNum: Number(row.v), backupFrom: row.standby ? 'standby' : 'primary', clockMs: Number(row.now) * 1000 };
}

/** The oldest transaction running now (before the backup starts: every one below it has ended), or null when it cannot be read. */
export async function transactionHorizon(sql: SqlClient): Promise<string | null> {
  try {
    return (await sql.query<{ xmin: string }>('select pg_snapshot_xmin(pg_current_snapshot())::text as xmin')).rows[0]!.xmin;
  } catch {
    return null;
  }
}

/** How the server's WAL may reach a stanza's archive: its archiver's settings, and whether a WAL receiver streams from it. */
export interface ServerArchiving {
  mode: string;
  /** archive_command, or archive_library (15+) when that is set. */
  command: string;
  /** Walsenders streaming, and physical slots (a receiver's, kept while it reconnects): WAL may reach the archive that way. */
  walsenders: number;
  /** Of them, WAL receivers: named as pg_receivewal names itself (pgpitr receive-wal too, by default), or reporting no replay position (a standby does). */
  receivers: number;
  physicalSlots: number;
}

export type ServerOfStanza = Omit<ServerNow, 'compression'> & { walSegmentSize: number; archiving: ServerArchiving };

/** What choosePrior compares a prior backup with: serverFacts, the server's system and timeline (IDENTIFY_SYSTEM), and its WAL segment size. */
export async function serverNow(req: { connection: ConnectionSettings }): Promise<ServerOfStanza> {
  const sql = await openSqlClient(req.connection, 'pgpitr backup');
  let facts: Awaited<ReturnType<typeof serverFacts>> & { walSegmentSize: number; archiving: ServerArchiving };
  try {
    const row = (await sql.query<{ s: string; mode: string; command: string; library: string; walsenders: number; receivers: number; slots: number }>(
      `select current_setting('wal_segment_size') as s, current_setting('archive_mode') as mode, current_setting('archive_command') as command,
              coalesce(current_setting('archive_library', true), '') as library, (select count(*)::int from pg_stat_replication) as walsenders,
              (select count(*)::int from pg_stat_replication where application_name = 'pg_receivewal' or (state = 'streaming' and replay_lsn is null)) as receivers,
              (select count(*)::int from pg_replication_slots where slot_type = 'physical') as slots`,
    )).rows[0]!;
    facts = { ...(await serverFacts(sql)), walSegmentSize: parseSizeSetting(row.s), archiving: { mode: row.mode, command: row.library !== '' ? row.library : row.command, walsenders: row.walsenders, receivers: row.receivers, physicalSlots: row.slots } };
  } finally {
    await sql.end().catch(() => {});
  }
  const session = await Session.open(req.connection, 'physical', 'replication connection');
  let ident: (string | null)[];
  try {
    ident = (await session.query('IDENTIFY_SYSTEM'))[0]?.rows[0] ?? [];
  } finally {
    session.close();
  }
  return { ...facts, systemIdentifier: ident[0] ?? '', timeline: Number(ident[1]) };
}

/**
 * serverNow, refused unless it is the stanza's system, major version and WAL segment size (a
 * segment size changed by pg_resetwal keeps the system): checked before a backup removes anything
 * an earlier one left (run against the wrong host, it would cost an interrupted backup --resume takes over).
 */
export async function serverOfStanza(req: { connection: ConnectionSettings; stanza: StanzaInfo }): Promise<ServerOfStanza> {
  const server = await serverNow(req);
  const st = req.stanza;
  const differs = stanzaMismatch({ systemIdentifier: server.systemIdentifier, major: Math.floor(server.pgVersionNum / 10000), walSegmentSize: server.walSegmentSize }, st);
  if (differs !== null) {
    throw new PgpitrError('ERR_TARGET', `the server ${differs}: stanza "${st.stanza}" cannot hold its backups`, {
      hint: 'check the connection options and --stanza; a cluster upgraded or rebuilt since needs a stanza of its own (pgpitr stanza-create --stanza NEW)',
    });
  }
  return server;
}

/**
 * A backup that relies on the archive, of a primary whose WAL cannot reach any archive (archive_mode
 * off and no WAL receiver streaming, or archive_mode on with nothing to archive with): refused
 * before anything is copied, rather than after the whole copy and --archive-timeout (pgBackRest's
 * archive check). A standby's WAL is archived by its primary: not judged here.
 */
export function refuseUnarchivedServer(server: ServerOfStanza, stanza: string): void {
  if (server.backupFrom !== 'primary') return;
  const a = server.archiving;
  // archive_mode off: any walsender or physical slot may be a WAL receiver feeding the stanza (one
  // reconnecting keeps its slot). An empty archive_command (archiving paused): only a walsender
  // named as receive-wal and pg_receivewal name themselves; a standby's does not archive.
  const why = a.mode === 'off' && a.walsenders === 0 && a.physicalSlots === 0 ? 'archive_mode is off, and no WAL receiver streams from it nor has a slot there'
    : a.mode !== 'off' && a.command.trim() === '' && a.receivers === 0 ? `archive_mode is ${a.mode} but archive_command is empty (PostgreSQL keeps the WAL in pg_wal, archiving nothing), and no WAL receiver (pg_receivewal, pgpitr receive-wal) streams from it`
    : null;
  if (why === null) return;
  throw new PgpitrError('ERR_CHECK', `the server does not archive its WAL (${why}): a backup of it never becomes complete, its WAL never reaching the archive of stanza "${stanza}"`, {
    hint: `${a.mode === 'off' ? 'set archive_mode = on (a restart) and ' : 'set '}archive_command = 'pgpitr archive-push --stanza ${stanza} ... %p'${a.mode === 'off' ? '' : ' (a reload)'}, or run pgpitr receive-wal for the stanza; or take the backup with --wal=included, which holds its own WAL`,
  });
}

/**
 * `ask` on `sql`, the backup's side connection, idle for as long as the backup ran; when that
 * fails (dropped by a firewall, a server restarted after the stop), on a new connection: the
 * files are stored by then, and a lost idle connection is no reason to throw them away.
 */
export async function onLiveClient<T>(sql: SqlClient, connection: ConnectionSettings, ask: (client: SqlClient) => Promise<T>): Promise<T> {
  try {
    return await ask(sql);
  } catch (e) {
    // A statement's own error (a SQLSTATE outside connection exceptions and operator intervention) is not a lost connection.
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith('08') && !code.startsWith('57P')) throw e;
    const fresh = await openSqlClient(connection, 'pgpitr backup');
    try {
      return await ask(fresh);
    } finally {
      await fresh.end().catch(() => {});
    }
  }
}

/**
 * The tablespaces of the server (pg_default and pg_global aside), with their locations and, when
 * the role may read it (superuser or pg_read_all_settings), the data directory.
 */
export const TABLESPACES_SQL = `select spcname as name, oid::int8 as oid, pg_tablespace_location(oid) as location,
        case when pg_has_role('pg_read_all_settings', 'USAGE') or (select rolsuper from pg_roles where rolname = current_user) then current_setting('data_directory') end as dir
   from pg_tablespace where spcname not in ('pg_default', 'pg_global') order by oid`;

/** Those of TABLESPACES_SQL's rows created inside the data directory (PostgreSQL allows it with a warning; restore cannot put them back there: restore/tablespace-overlap.ts). */
export function insideDataDir(rows: { name: string; location: string; dir: string | null }[]): string[] {
  return rows.filter((r) => r.dir !== null && r.location.startsWith('/') && `${r.location}/`.startsWith(`${r.dir.replace(/\/+$/, '')}/`)).map((r) => r.name);
}

/** The server's next transaction and clock once it has ended the backup: what restore compares --target-xid and --target-time with. */
export type StopFacts = Pick<BackupRecord, 'stop_next_xid'> & { server_stop_time: string | null };

const STOP_FACTS_SQL = 'select pg_snapshot_xmax(pg_current_snapshot())::text as xmax, extract(epoch from clock_timestamp())::text as now';

/**
 * StopFacts (onLiveClient). Asked after the server ended the backup, they are never earlier than
 * its end. Never throws: without them the backup is still a backup (null: restore judges by the
 * backup's end by this host's clock, and takes it for any --target-xid).
 */
export async function stopFacts(sql: SqlClient, connection: ConnectionSettings, warn: (m: string) => void): Promise<StopFacts> {
  try {
    const row = (await onLiveClient(sql, connection, (c) => c.query<{ xmax: string; now: string }>(STOP_FACTS_SQL))).rows[0]!;
    return { stop_next_xid: row.xmax, server_stop_time: new Date(Number(row.now) * 1000).toISOString() };
  } catch (e) {
    warn(`the server's clock and next transaction at the end of the backup could not be read (${(e as Error).message}): recorded by this host's clock only`);
    return { stop_next_xid: null, server_stop_time: null };
  }
}
