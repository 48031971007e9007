// An ordinary SQL connection through node-postgres, with the same libpq-style
// settings as the replication connections (used by check, stanza-create and the
// progress watcher).

import pg from 'pg';
import type { ConnectionSettings } from './conninfo.js';
import { describeTarget } from './conninfo.js';
import { PgpitrError } from '../common/errors.js';

export type SqlClient = pg.Client;

export async function openSqlClient(settings: ConnectionSettings, applicationName: string): Promise<SqlClient> {
  const sslmode = settings.sslmode ?? 'disable';
  const client = new pg.Client({
    host: settings.host,
    port: settings.port,
    database: settings.dbname ?? 'postgres',
    ...(settings.user !== undefined ? { user: settings.user } : {}),
    ...(settings.password !== undefined ? { password: settings.password } : {}),
    application_name: settings.application_name ?? applicationName,
    ssl: sslmode === 'require' || sslmode.startsWith('verify') ? { rejectUnauthorized: sslmode !== 'require' } : false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    throw new PgpitrError('ERR_CONNECTION', `could not connect to ${describeTarget(settings)}: ${(e as Error).message}`, {
      cause: e,
      hint: 'check -h/-p/-U/-d (or pg-host, pg-port, pg-user, pg-database in the configuration file) and pg_hba.conf',
    });
  }
  return client;
}
