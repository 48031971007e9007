// Connection start-up through node-postgres: TCP or Unix socket, TLS (sslmode),
// SCRAM/MD5/password authentication, ~/.pgpass. We do not hand-roll any of that.
// Over a Unix socket with no password given, plain-startup.ts tries first without
// loading node-postgres, and hands over here if the server asks for a password.
// Once the server says ReadyForQuery we take the socket over (see session.ts).

import type pg from 'pg';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { PgpitrError } from '../common/errors.js';
import type { ConnectionSettings } from './conninfo.js';
import { describeTarget } from './conninfo.js';
import { plainStartup, startupParameters } from './plain-startup.js';

/** The subset of pg.Client we rely on after start-up. */
export interface StartedConnection {
  socket: Duplex;
  backendPid: number;
  serverParameters: Map<string, string>;
}

export type ReplicationMode = 'physical' | 'database' | 'none';

export async function startConnection(
  settings: ConnectionSettings,
  mode: ReplicationMode,
  applicationName: string,
): Promise<StartedConnection> {
  // PostgreSQL never speaks SSL over a Unix-domain socket (the postmaster answers 'N'
  // to an SSLRequest there) and libpq does not ask: with prefer, go straight to the
  // plain connection rather than pay a refused attempt (a second backend fork).
  const unixSocket = settings.host?.startsWith('/') ?? false;
  const sslmode = unixSocket && (settings.sslmode ?? 'prefer') === 'prefer' ? 'disable' : settings.sslmode ?? 'prefer';
  if (unixSocket && settings.password === undefined && (sslmode === 'disable' || sslmode === 'allow')) {
    try {
      const started = await plainStartup(settings, startupParameters(settings, replicationParameter(mode), applicationName));
      if (started) return started;
    } catch (e) {
      throw connectionError(e, settings);
    }
  }
  if (sslmode === 'prefer' || sslmode === 'allow') {
    try {
      return await attempt(settings, mode, applicationName, sslmode === 'prefer' ? 'require' : 'disable');
    } catch (e) {
      if (!isSslRefused(e)) throw e;
      return attempt(settings, mode, applicationName, 'disable');
    }
  }
  return attempt(settings, mode, applicationName, sslmode);
}

/** The start-up parameter `replication` for a mode; null: a normal session. */
function replicationParameter(mode: ReplicationMode): string | null {
  return mode === 'none' ? null : mode === 'database' ? 'database' : 'true';
}

function isSslRefused(e: unknown): boolean {
  const msg = (e as Error)?.cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error)?.message;
  return /does not support SSL/i.test(msg ?? '');
}

function sslConfig(settings: ConnectionSettings, sslmode: string): pg.ClientConfig['ssl'] {
  switch (sslmode) {
    case 'disable':
      return false;
    case 'require':
    case 'verify-ca':
    case 'verify-full': {
      const ssl: Record<string, unknown> = { rejectUnauthorized: sslmode !== 'require' };
      if (sslmode === 'verify-ca') ssl.checkServerIdentity = () => undefined;
      return ssl as pg.ClientConfig['ssl'];
    }
    default:
      throw new PgpitrError('ERR_USAGE', `invalid sslmode "${sslmode}"`, {
        hint: 'use one of disable, allow, prefer, require, verify-ca, verify-full',
      });
  }
}

async function attempt(
  settings: ConnectionSettings,
  mode: ReplicationMode,
  applicationName: string,
  sslmode: string,
): Promise<StartedConnection> {
  const config: pg.ClientConfig = {
    host: settings.host,
    port: settings.port,
    database: settings.dbname ?? settings.user,
    application_name: settings.application_name ?? applicationName,
    ssl: sslConfig(settings, sslmode),
  };
  if (settings.user !== undefined) config.user = settings.user;
  if (settings.password !== undefined) config.password = settings.password;
  if (settings.connect_timeout) config.connectionTimeoutMillis = settings.connect_timeout * 1000;
  const replication = replicationParameter(mode);
  if (replication !== null) (config as Record<string, unknown>).replication = replication;
  const client = new (loadPg().Client)(config);
  const parameters = new Map<string, string>();
  const internal = client as unknown as {
    connection: { stream: Duplex; on(ev: string, fn: (m: { parameterName: string; parameterValue: string }) => void): void };
    processID: number | null;
  };
  internal.connection.on('parameterStatus', (m) => parameters.set(m.parameterName, m.parameterValue));
  client.on('error', () => {
    /* errors after start-up are reported by the session that owns the socket */
  });
  try {
    await client.connect();
  } catch (e) {
    throw connectionError(e, settings);
  }
  const socket = internal.connection.stream;
  // Take the socket from node-postgres: it is idle (ReadyForQuery) and owns no buffered bytes.
  socket.removeAllListeners('data');
  socket.pause();
  return {
    socket,
    backendPid: internal.processID ?? 0,
    // pg's own 'end'/'close' handlers stay attached; they only emit on the client,
    // whose 'error' listener above swallows them.
    serverParameters: parameters,
  };
}

function connectionError(e: unknown, settings: ConnectionSettings): PgpitrError {
  const err = e as { message?: string; code?: string; detail?: string; hint?: string };
  const where = describeTarget(settings);
  const message = err.message ?? String(e);
  const sqlState = err.code;
  let hint: string | undefined = err.hint;
  if (sqlState === '28P01' || sqlState === '28000') {
    if (/no pg_hba.conf entry/.test(message)) {
      hint ??= 'add a "host replication <user> <address> scram-sha-256" line (or "local replication ...") to pg_hba.conf and reload the server';
    } else if (/password authentication failed/.test(message)) {
      hint ??= 'check the password given by PGPASSWORD, ~/.pgpass or the prompt (-W)';
    } else if (/replication/.test(message)) {
      hint ??= 'the role needs the REPLICATION attribute: ALTER ROLE <user> REPLICATION';
    }
  } else if (/replication role|start WAL sender|start walsender/i.test(message)) {
    hint ??= 'the role needs the REPLICATION attribute: ALTER ROLE <user> REPLICATION (or connect as a role that has it)';
  } else if (sqlState === '53300') {
    hint ??= 'raise max_wal_senders (or max_connections) on the server, or wait for other replication connections to end';
  } else if (/ECONNREFUSED|ENOENT/.test(err.code ?? message)) {
    hint ??= 'check that the server is running and accepting connections at this host and port';
  } else if (/password must be a string|client password/i.test(message)) {
    hint ??= 'the server asks for a password: set PGPASSWORD, add it to ~/.pgpass, or use -W to be prompted';
  }
  return new PgpitrError('ERR_CONNECTION', `could not connect to ${where}: ${message}`, {
    cause: e,
    ...(hint ? { hint } : {}),
    ...(err.detail ? { detail: err.detail } : {}),
  });
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
