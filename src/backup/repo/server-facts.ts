// What a repository backup asks the server before it chooses how to back up: its version,
// whether it is a standby, its clock, its system and timeline (choosePrior, resume); and once the
// server has ended the backup, its clock and next transaction (stopFacts).

import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import type { SqlClient } from '../../protocol/sql-client.js';
import { Session } from '../../protocol/session.js';
import type { ServerNow } from './prior-choice.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';

/** The server's version, whether it is a standby, and its clock now. */
export async function serverFacts(sql: SqlClient): Promise<Pick<ServerNow, 'pgVersionNum' | 'backupFrom' | 'clockMs'>> {
  const row = (await sql.query<{ v: string; standby: boolean; now: string }>(
    `select current_setting('server_version_num') as v, pg_is_in_recovery() as standby, extract(epoch from clock_timestamp())::text as now`,
  )).rows[0]!;
  return { pgVersionNum: Number(row.v), backupFrom: row.standby ? 'standby' : 'primary', clockMs: Number(row.now) * 1000 };
}

/** What choosePrior compares a prior backup with: serverFacts, and the server's system and timeline (IDENTIFY_SYSTEM). */
export async function serverNow(req: { connection: ConnectionSettings }): Promise<Omit<ServerNow, 'compression'>> {
  const sql = await openSqlClient(req.connection, 'pgpitr backup');
  let facts: Awaited<ReturnType<typeof serverFacts>>;
  try {
    facts = await serverFacts(sql);
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
 * `ask` on `sql`, the backup's side connection, idle for as long as the backup ran; when that
 * fails (dropped by a firewall, a server restarted after the stop), on a new connection: the
 * files are stored by then, and a lost idle connection is no reason to throw them away.
 */
export async function onLiveClient<T>(sql: SqlClient, connection: ConnectionSettings, ask: (client: SqlClient) => Promise<T>): Promise<T> {
  try {
    return await ask(sql);
  } catch {
    const fresh = await openSqlClient(connection, 'pgpitr backup');
    try {
      return await ask(fresh);
    } finally {
      await fresh.end().catch(() => {});
    }
  }
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
