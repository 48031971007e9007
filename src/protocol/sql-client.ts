// An ordinary SQL connection through node-postgres, with the same libpq-style
// settings, TLS and password handling as the replication connections
// (pg-client.ts); used by check, stanza-create and the progress watcher.

import type pg from 'pg';
import type { ConnectionSettings } from './conninfo.js';
import { sessionDatabase } from './conninfo.js';
import { connectPgClient } from './pg-client.js';
import { LIFT_TIMEOUTS_SQL } from './session-timeouts.js';

export type SqlClient = pg.Client;

/** A connection with no statement, lock or idle timeouts of the role's or database's (session-timeouts.ts). */
export async function openSqlClient(settings: ConnectionSettings, applicationName: string): Promise<SqlClient> {
  const client = await connectPgClient(settings, { database: sessionDatabase(settings, null), applicationName, replication: null });
  try {
    await client.query(LIFT_TIMEOUTS_SQL);
  } catch (e) {
    await client.end().catch(() => {});
    throw e;
  }
  return client;
}
