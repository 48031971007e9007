// An ordinary SQL connection through node-postgres, with the same libpq-style
// settings, TLS and password handling as the replication connections
// (pg-client.ts); used by check, stanza-create and the progress watcher.

import type pg from 'pg';
import type { ConnectionSettings } from './conninfo.js';
import { connectPgClient } from './pg-client.js';

export type SqlClient = pg.Client;

export function openSqlClient(settings: ConnectionSettings, applicationName: string): Promise<SqlClient> {
  return connectPgClient(settings, { database: settings.dbname ?? 'postgres', applicationName, replication: null });
}
