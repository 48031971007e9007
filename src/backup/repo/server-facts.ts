// What a repository backup asks the server before it chooses how to back up: its version,
// whether it is a standby, its clock, its system and timeline (choosePrior, resume).

import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import type { SqlClient } from '../../protocol/sql-client.js';
import { Session } from '../../protocol/session.js';
import type { ServerNow } from './prior-choice.js';

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
