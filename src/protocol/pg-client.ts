// A node-postgres client connected with libpq-style settings: the one place where
// settings become a pg.ClientConfig, for replication sessions (pg-startup.ts) and
// SQL connections (sql-client.ts) alike. sslmode prefer and allow try both ways
// as libpq does; TLS options come from tls-options.ts; the password, when the
// server asks for one, from the settings or the password file (pgpass.ts), and
// when there is none the attempt fails at once, in libpq's words, with the socket
// closed (the server would otherwise wait for it until authentication_timeout).

import type pg from 'pg';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { ConnectionSettings } from './conninfo.js';
import { effectiveUser, passwordFileDatabase } from './conninfo.js';
import { tlsOptions } from './tls-options.js';
import type { EncryptingSslMode } from './tls-options.js';
import { passwordFromFile } from './pgpass.js';
import { conditionOf, connectionError, NoPasswordSupplied, sqlStateOf } from './connection-errors.js';
import { usageError } from '../common/errors.js';

export interface PgClientRequest {
  database: string;
  applicationName: string;
  /** The start-up parameter `replication`; null: a normal session. */
  replication: string | null;
  /** A socket of the caller's for an attempt without TLS (node-postgres connects it); absent: node-postgres makes its own. */
  plainSocket?: (() => Duplex) | undefined;
}

/** What the pg.Client exposes of its connection that we use. */
export interface PgClientInternals {
  connection: { stream: Duplex; on(ev: string, fn: (m: { parameterName: string; parameterValue: string }) => void): void };
  processID: number | null;
}

/** A connected client; sslmode decides the attempts. Errors are PgpitrErrors (ERR_CONNECTION or ERR_USAGE). */
export async function connectPgClient(
  settings: ConnectionSettings,
  request: PgClientRequest,
  onCreated: (client: pg.Client) => void = () => {},
): Promise<pg.Client> {
  // PostgreSQL never speaks SSL over a Unix-domain socket and libpq does not ask there.
  const unixSocket = (settings.hostaddr === undefined && settings.host?.startsWith('/')) ?? false;
  const configured = settings.sslmode ?? 'prefer';
  if (settings.sslnegotiation !== undefined && settings.sslnegotiation !== 'postgres') {
    if (settings.sslnegotiation !== 'direct') throw usageError(`invalid sslnegotiation value: "${settings.sslnegotiation}"`, 'use postgres or direct');
    if (!['require', 'verify-ca', 'verify-full'].includes(configured)) {
      throw usageError(`weak sslmode "${configured}" may not be used with sslnegotiation=direct (use "require", "verify-ca", or "verify-full")`);
    }
  }
  const once = (ssl: EncryptingSslMode | 'disable') => attempt(settings, request, ssl, configured, onCreated);
  if (unixSocket) return once('disable');
  switch (configured) {
    case 'disable':
    case 'require':
    case 'verify-ca':
    case 'verify-full':
      return once(configured);
    case 'prefer':
      // TLS first; without it when the server has none, or when pg_hba.conf refuses
      // this connection over TLS (a hostnossl line), as libpq does.
      try {
        return await once('require');
      } catch (e) {
        if (conditionOf(e) !== 'server-without-ssl' && sqlStateOf(e) !== '28000') throw e;
        return once('disable');
      }
    case 'allow':
      // Plain first; with TLS when pg_hba.conf refuses the plain connection.
      try {
        return await once('disable');
      } catch (e) {
        if (sqlStateOf(e) !== '28000') throw e;
        return once('require');
      }
    default:
      throw usageError(`invalid sslmode value: "${configured}"`);
  }
}

/** keepalives / keepalives_idle (libpq's): null when off, else the idle seconds before the first (0: the system's). */
function keepaliveOf(settings: ConnectionSettings): number | null {
  if (settings.extra['keepalives'] === '0') return null;
  const idle = Number(settings.extra['keepalives_idle'] ?? '0');
  return Number.isInteger(idle) && idle > 0 ? idle : 0;
}

async function attempt(
  settings: ConnectionSettings,
  request: PgClientRequest,
  sslmode: EncryptingSslMode | 'disable',
  configured: string,
  onCreated: (client: pg.Client) => void,
): Promise<pg.Client> {
  const user = effectiveUser(settings);
  const config: pg.ClientConfig & Record<string, unknown> = {
    host: settings.hostaddr ?? settings.host,
    port: settings.port,
    user,
    database: request.database,
    application_name: settings.application_name ?? settings.fallback_application_name ?? request.applicationName,
    ssl: sslmode === 'disable' ? false : tlsOptions(settings, sslmode, configured),
    sslnegotiation: settings.sslnegotiation === 'direct' ? 'direct' : 'postgres',
    // Asked for only when the server wants a password: then it is given, or in the password file, or we stop here.
    password: async () => {
      if (settings.password) return settings.password;
      const fromFile = passwordFromFile(settings, user, (m) => process.stderr.write(`${m}\n`), process.env, passwordFileDatabase(request.replication, request.database));
      if (fromFile === undefined) throw new NoPasswordSupplied();
      return fromFile;
    },
  };
  // As libpq: TCP keepalives on unless keepalives=0 (a dead peer during a long silent phase, a
  // checkpoint before a backup's first byte, is then found); keepalives_idle sets their start.
  const keepalive = keepaliveOf(settings);
  if (keepalive !== null) {
    config.keepAlive = true;
    if (keepalive > 0) config.keepAliveInitialDelayMillis = keepalive * 1000;
  }
  // SCRAM-SHA-256-PLUS over TLS, as libpq's channel_binding=prefer (its default): a man in the
  // middle terminating TLS cannot relay the exchange. Never without TLS (there is nothing to bind).
  config.enableChannelBinding = sslmode !== 'disable' && (settings.extra['channel_binding'] ?? process.env['PGCHANNELBINDING']) !== 'disable';
  // libpq takes any iteration count the server's scram_iterations gives (node-postgres stops at 100000).
  config.scramMaxIterations = 10_000_000;
  if (sslmode === 'disable' && request.plainSocket) config.stream = request.plainSocket;
  if (settings.options) config.options = settings.options;
  if (settings.connect_timeout) config.connectionTimeoutMillis = settings.connect_timeout * 1000;
  if (request.replication !== null) config.replication = request.replication;
  const client = new (loadPg().Client)(config);
  onCreated(client);
  client.on('error', () => {
    /* errors after start-up are reported by whoever owns the connection */
  });
  try {
    await client.connect();
  } catch (e) {
    // Whatever failed (a missing password, a refused certificate, a server error),
    // the socket goes now: the server must not wait on it.
    (client as unknown as PgClientInternals).connection.stream.destroy();
    throw connectionError(e, settings);
  }
  return client;
}

let pgModule: typeof pg | null = null;

/**
 * node-postgres, loaded on first use. On Node 20, pg decides whether it runs in a
 * Cloudflare Worker by constructing a fetch Response, and Node's first touch of
 * Response loads its whole fetch implementation (undici): 25-30 ms of a start-up
 * that is ~200 ms, for nothing we use. We load pg with Response hidden for the
 * duration of that one synchronous require(), so pg takes its Node.js path (the
 * right one here). (From Node 21 on, pg tells from navigator.userAgent.)
 */
function loadPg(): typeof pg {
  if (pgModule) return pgModule;
  const load = () => createRequire(import.meta.url)('pg') as typeof pg;
  const response = Object.getOwnPropertyDescriptor(globalThis, 'Response');
  if (!response?.configurable) return (pgModule = load());
  Object.defineProperty(globalThis, 'Response', { value: undefined, configurable: true, writable: true });
  try {
    pgModule = load();
  } finally {
    Object.defineProperty(globalThis, 'Response', response);
  }
  return pgModule;
}
