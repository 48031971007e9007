// A failed connection attempt as a PgpitrError: the server's message (or libpq's
// words for what failed on our side), and a hint chosen by the condition itself,
// the SQLSTATE the server sent or the system's / TLS library's error code, never
// by words found in the message.

import { PgpitrError } from '../common/errors.js';
import type { ConnectionSettings } from './conninfo.js';
import { describeTarget } from './conninfo.js';

/** The server asked for a password and none was given or found in the password file. */
export class NoPasswordSupplied extends Error {
  constructor() {
    super('fe_sendauth: no password supplied');
  }
}

/**
 * Conditions the callers act on: `no-password` (a prompt may ask for one),
 * `server-without-ssl` (sslmode prefer then connects without TLS).
 */
export type FailureCondition = 'no-password' | 'server-without-ssl';

export class ConnectionFailed extends PgpitrError {
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    readonly condition: FailureCondition | undefined,
    details: { hint?: string; detail?: string; cause?: unknown },
  ) {
    super('ERR_CONNECTION', message, details);
    this.name = 'ConnectionFailed';
  }
}

export function conditionOf(e: unknown): FailureCondition | undefined {
  return e instanceof ConnectionFailed ? e.condition : undefined;
}

export function sqlStateOf(e: unknown): string | undefined {
  return e instanceof ConnectionFailed ? e.sqlState : undefined;
}

const SQLSTATE_HINTS: Record<string, string> = {
  // invalid_authorization_specification: no pg_hba.conf line, a "reject" line, a role that may not log in
  '28000': 'pg_hba.conf has no line that accepts this connection, or one rejects it (or the role may not log in): add or fix a line for this user, database ("replication" for a replication connection) and client address, then reload the server',
  // invalid_password
  '28P01': 'check the password given in the connection string, by PGPASSWORD, the password file (~/.pgpass or PGPASSFILE) or the prompt (-W)',
  // insufficient_privilege: a walsender for a role without REPLICATION
  '42501': 'the role needs the REPLICATION attribute: ALTER ROLE <user> REPLICATION (or connect as a role that has it)',
  // too_many_connections
  '53300': 'raise max_wal_senders (or max_connections) on the server, or wait for other connections to end',
  // invalid_catalog_name
  '3D000': 'name an existing database (-d dbname=...)',
  // cannot_connect_now
  '57P03': 'the server is starting up, shutting down or in recovery: wait and try again',
};

const SYSTEM_HINTS: Record<string, string> = {
  ECONNREFUSED: 'check that the server is running and accepting connections at this host and port',
  ENOENT: 'check that the server is running and accepting connections on this socket directory and port',
  ENOTFOUND: 'the host name cannot be resolved: check -h / host=',
  EAI_AGAIN: 'the host name cannot be resolved: check -h / host=',
  ETIMEDOUT: 'check the network path to the server (a firewall?) and connect_timeout',
  EHOSTUNREACH: 'check the network path to the server',
};

/** Node's certificate verification failures (OpenSSL's X509_V_ERR_* names). */
const CERT_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_GET_CRL', 'CRL_HAS_EXPIRED', 'INVALID_CA', 'CERT_UNTRUSTED', 'CERT_REJECTED',
]);

interface ErrorLike {
  message?: string;
  code?: string;
  detail?: string;
  hint?: string;
  host?: string;
  cert?: { subject?: { CN?: string } };
}

export function connectionError(e: unknown, settings: ConnectionSettings): PgpitrError {
  if (e instanceof PgpitrError) return e;
  const err = (e ?? {}) as ErrorLike;
  const where = describeTarget(settings);
  const code = err.code;
  // node-postgres' ErrorResponse errors carry a five-character SQLSTATE as `code`.
  const sqlState = code !== undefined && /^[0-9A-Z]{5}$/.test(code) && !/^E[A-Z]/.test(code) ? code : undefined;
  let message = err.message ?? String(e);
  let hint = err.hint;
  let condition: FailureCondition | undefined;
  if (e instanceof NoPasswordSupplied) {
    condition = 'no-password';
    hint = 'the server asks for a password: give it with PGPASSWORD or the password file (~/.pgpass or PGPASSFILE); basebackup and receive-wal also prompt for it with -W';
  } else if (sqlState === '28000' && /\brole ".*" does not exist/.test(message)) {
    hint ??= 'give -U (or PGUSER, the configuration file\'s pg-user) a role that exists on the server, or create it (CREATE ROLE name LOGIN REPLICATION, or a superuser)';
  } else if (sqlState !== undefined) {
    hint ??= SQLSTATE_HINTS[sqlState];
  } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    message = `server certificate for "${err.cert?.subject?.CN ?? '?'}" does not match host name "${err.host ?? settings.host}"`;
    hint = 'connect by a name the certificate lists (in its subject alternative names), or use sslmode=verify-ca to check the chain only';
  } else if (code !== undefined && CERT_VERIFY_CODES.has(code)) {
    message = `SSL error: certificate verify failed: ${message}`;
    hint = "the server's certificate must be signed by a CA in the root certificate file (sslrootcert, else ~/.postgresql/root.crt)";
  } else if (code !== undefined && SYSTEM_HINTS[code] !== undefined) {
    hint = SYSTEM_HINTS[code];
  } else if (message.startsWith('SASL channel binding:')) {
    // node-postgres cannot hash this server certificate's signature for SCRAM-SHA-256-PLUS: said
    // without the certificate it prints after the words.
    message = `SCRAM channel binding failed: ${message.replace(/^SASL channel binding:\s*/, '').replace(/\s*when parsing public certificate[\s\S]*$/, '')}`;
    hint = "the server certificate's signature algorithm is one pgpitr cannot bind to; connect with channel_binding=disable";
  } else if (message === 'The server does not support SSL connections') {
    // node-postgres' words (it has no code) for the server's 'N' to SSLRequest; libpq's are these.
    condition = 'server-without-ssl';
    message = 'server does not support SSL, but SSL was required';
    hint = 'turn ssl on in the server, or connect with a weaker sslmode (prefer, allow or disable)';
  }
  return new ConnectionFailed(`could not connect to ${where}: ${message}`, sqlState, condition, {
    cause: e,
    ...(hint ? { hint } : {}),
    ...(err.detail ? { detail: err.detail } : {}),
  });
}
