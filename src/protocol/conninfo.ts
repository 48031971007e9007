// libpq-style connection settings: a `-d` value that is a conninfo string
// ("host=... port=...") or a postgresql:// URI, the -h/-p/-U flags (which override
// it, as in libpq's expand_dbname), and the PG* environment variables.
// Every keyword and environment variable libpq knows is checked (conninfo-keywords.ts):
// an unknown one, or a value pgpitr cannot honour, is refused rather than ignored.

import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { usageError } from '../common/errors.js';
import { LIBPQ_KEYWORDS } from './conninfo-keywords.js';
import type { KeywordInfo } from './conninfo-keywords.js';
import { readService } from './service-file.js';

export interface ConnectionSettings {
  host?: string;
  /** Numeric address to connect to; `host` then names the server for TLS and ~/.pgpass (libpq). */
  hostaddr?: string;
  port?: number;
  user?: string;
  password?: string;
  passfile?: string;
  dbname?: string;
  sslmode?: string;
  sslnegotiation?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  sslpassword?: string;
  sslcrl?: string;
  sslcertmode?: string;
  ssl_min_protocol_version?: string;
  ssl_max_protocol_version?: string;
  application_name?: string;
  fallback_application_name?: string;
  options?: string;
  connect_timeout?: number;
  /** Remaining keywords, kept so -R can write them into primary_conninfo. */
  extra: Record<string, string>;
}

/** Keywords -R writes by name (recovery-config.ts); every other one given in -d goes into `extra`. */
const WRITTEN_BY_NAME = new Set(['host', 'hostaddr', 'port', 'user', 'password', 'dbname', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name', 'connect_timeout']);

/**
 * Keywords -R writes when the environment alone set them: those every server from 13 on knows (its
 * walreceiver's libpq refuses a keyword it does not know: sslnegotiation on a 16, sslcertmode on a
 * 15), and PGPASSFILE (a file chosen for this backup, which pg_basebackup writes too: without it the
 * standby has no password), not a service file (read here, its settings written out instead).
 */
const ENV_WRITTEN = new Set(['passfile', 'options', 'sslcrl', 'target_session_attrs', 'ssl_min_protocol_version', 'ssl_max_protocol_version', 'gssencmode', 'channel_binding', 'krbsrvname']);

/** String-valued keywords copied as they are into ConnectionSettings. */
const PLAIN_KEYWORDS = [
  'passfile', 'sslnegotiation', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword', 'sslcrl', 'sslcertmode',
  'ssl_min_protocol_version', 'ssl_max_protocol_version', 'application_name', 'fallback_application_name', 'options',
] as const;

/** Parses "key=value key2='quoted \' value'" as libpq does (conninfo_parse). */
export function parseConninfoString(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  while (true) {
    skipSpace();
    if (i >= n) break;
    let key = '';
    while (i < n && text[i] !== '=' && !/\s/.test(text[i]!)) key += text[i++];
    skipSpace();
    if (text[i] !== '=') throw usageError(`missing "=" after "${key}" in connection info string`);
    i++;
    skipSpace();
    let value = '';
    if (text[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i++]!;
        if (c === '\\' && i < n) value += text[i++];
        else if (c === "'") {
          closed = true;
          break;
        } else value += c;
      }
      if (!closed) throw usageError('unterminated quoted string in connection info string');
    } else {
      while (i < n && !/\s/.test(text[i]!)) {
        const c = text[i++]!;
        if (c === '\\' && i < n) value += text[i++];
        else value += c;
      }
    }
    out[key] = value;
  }
  return out;
}

/**
 * postgresql://[user[:password]@][host][:port][/dbname][?key=value&...] as libpq reads it
 * (conninfo_uri_parse): every part percent-decoded (a host may be a socket directory written
 * %2Fvar%2Frun%2Fpostgresql, '+' stays '+'), an IPv6 host in brackets, every part optional
 * (postgresql:///db is the default host's db). A list of hosts is kept as given (refused later).
 */
export function parseConnectionUri(uri: string): Record<string, string> {
  const invalid = () => usageError(`invalid connection URI "${redactUri(uri)}"`);
  const decode = (text: string): string => {
    // %00 would put a NUL in the start-up packet (libpq refuses it too).
    if (/%00/.test(text)) throw invalid();
    try {
      return decodeURIComponent(text);
    } catch {
      throw invalid();
    }
  };
  const m = /^postgres(?:ql)?:\/\/([^?]*)(?:\?(.*))?$/s.exec(uri);
  if (!m) throw invalid();
  const rest = m[1]!;
  const slash = rest.indexOf('/');
  let authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const out: Record<string, string> = {};
  const at = authority.indexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = userinfo.indexOf(':');
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon));
    if (user !== '') out.user = user;
    // An empty one is none (PGPASSWORD, the password file still apply), as in libpq.
    const password = colon < 0 ? '' : decode(userinfo.slice(colon + 1));
    if (password !== '') out.password = password;
  }
  let host = authority;
  let port = '';
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw invalid();
    host = authority.slice(1, close);
    if (host === '') throw invalid(); // libpq: an IPv6 host address may not be empty
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw invalid();
    port = after.slice(1);
  } else if (!authority.includes(',')) {
    const colon = authority.lastIndexOf(':');
    if (colon >= 0) {
      host = authority.slice(0, colon);
      port = authority.slice(colon + 1);
    }
  }
  // A port that is not a number: the URI is misread (a password with an unencoded '/'), said without its text.
  if (port !== '' && !/^\d+$/.test(port) && !authority.includes(',')) throw invalid();
  if (host !== '') out.host = decode(host);
  if (port !== '') out.port = decode(port);
  if (path !== '') out.dbname = decode(path);
  for (const pair of (m[2] ?? '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq < 0) throw usageError(`missing "=" after "${decode(pair)}" in connection URI query parameter`);
    const k = decode(pair.slice(0, eq));
    const v = decode(pair.slice(eq + 1));
    // libpq takes ssl=true from JDBC-style URIs as sslmode=require.
    if (k === 'ssl' && v === 'true') out.sslmode = 'require';
    else if (!LIBPQ_KEYWORDS.has(k)) throw usageError(`invalid URI query parameter: "${k}"`, KEYWORD_HINT);
    else out[k] = v;
  }
  return out;
}

/** The URI without its password: after the user, up to the last '@' (a password may hold '/' unencoded), and a password= parameter. */
function redactUri(uri: string): string {
  return uri.replace(/\/\/([^:@/]*):.*@/, '//$1:***@').replace(/([?&]password=)[^&]*/gi, '$1***');
}

export function isConnectionString(value: string): boolean {
  return /^postgres(ql)?:\/\//.test(value) || value.includes('=');
}

export interface ConnectionFlags {
  dbname?: string | undefined; // -d: a conninfo string, URI, or plain database name
  host?: string | undefined;
  port?: string | undefined;
  user?: string | undefined;
}

const KEYWORD_HINT = 'see "Parameter Key Words" in the libpq documentation for the valid ones';

/**
 * Resolve flags + environment into settings, libpq precedence: flags > -d conninfo > service >
 * environment > defaults, with `file` (a configuration file's pg-host, pg-port, pg-user,
 * pg-database) after -d and before the service and the environment, as pgBackRest's pg1-* settings
 * are (a PGHOST in a login profile does not send the configured commands to another server).
 */
export function resolveConnectionSettings(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, file: ConnectionFlags = {}): ConnectionSettings {
  let fromConninfo: Record<string, string> = {};
  if (flags.dbname !== undefined) {
    if (/^postgres(ql)?:\/\//.test(flags.dbname)) fromConninfo = parseConnectionUri(flags.dbname);
    else if (flags.dbname.includes('=')) fromConninfo = parseConninfoString(flags.dbname);
    else fromConninfo = { dbname: flags.dbname };
  }
  for (const key of Object.keys(fromConninfo)) {
    if (!LIBPQ_KEYWORDS.has(key)) throw usageError(`invalid connection option "${key}"`, KEYWORD_HINT);
  }
  // A service's values come after -d's and before the environment's, as in libpq.
  const serviceName = fromConninfo.service ?? env.PGSERVICE;
  const service = serviceName ? readService(serviceName, env) : null;
  const fromService = service?.values ?? {};
  const fromFile: Record<string, string | undefined> = { host: file.host, port: file.port, user: file.user, dbname: file.dbname };
  // Every keyword's value, wherever it came from (-d, the configuration file, the service, its environment variable).
  const given = (key: string): string | undefined => {
    const fromEnv = LIBPQ_KEYWORDS.get(key)?.env;
    return fromConninfo[key] ?? fromFile[key] ?? fromService[key] ?? (fromEnv === undefined ? undefined : env[fromEnv]);
  };
  for (const [key, info] of LIBPQ_KEYWORDS) {
    const where =
      fromConninfo[key] !== undefined ? 'the connection string'
      : fromFile[key] !== undefined ? 'the configuration file'
      : fromService[key] !== undefined ? `service "${serviceName}" in "${service!.file}"`
      : `the environment variable ${info.env}`;
    refuseUnsupported(key, info, given(key), where);
  }

  const settings: ConnectionSettings = { extra: {} };
  // An empty host, port, user or database means the default, as in libpq (PGPORT= exported empty).
  const set = (v: string | undefined) => (v === '' ? undefined : v);
  const host = set(flags.host ?? given('host'));
  const port = set(flags.port ?? given('port'));
  for (const [key, value] of [['host', host], ['hostaddr', given('hostaddr')], ['port', port]] as const) {
    // libpq tries each of a comma-separated list in turn; pgpitr connects to one server.
    if (value?.includes(',')) throw usageError(`${key} lists are not supported by pgpitr: "${value}"`, 'give one host and one port; run the command against each server in turn');
  }
  const hostaddr = set(given('hostaddr'));
  if (hostaddr !== undefined) settings.hostaddr = hostaddr;
  settings.host = host ?? hostaddr ?? defaultSocketDir();
  if (port !== undefined) {
    const p = Number(port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw usageError(`invalid port number "${port}"`, 'a port is an integer between 1 and 65535');
    settings.port = p;
  } else settings.port = 5432;
  const user = set(flags.user ?? given('user'));
  if (user !== undefined) settings.user = user;
  const password = given('password');
  if (password !== undefined) settings.password = password;
  const dbname = set(given('dbname'));
  if (dbname !== undefined) settings.dbname = dbname;
  // With sslrootcert=system the default sslmode is verify-full (libpq 16+).
  const sslmode = given('sslmode') ?? (given('requiressl') === '1' ? 'require' : given('sslrootcert') === 'system' ? 'verify-full' : undefined);
  if (sslmode !== undefined) {
    if (!SSL_MODES.includes(sslmode)) throw usageError(`invalid sslmode value: "${sslmode}"`, `use one of ${SSL_MODES.join(', ')}`);
    settings.sslmode = sslmode;
  }
  for (const key of PLAIN_KEYWORDS) {
    const v = given(key);
    if (v !== undefined) settings[key] = v;
  }
  const timeout = given('connect_timeout');
  if (timeout !== undefined) {
    const t = Number(timeout);
    if (!Number.isInteger(t)) throw usageError(`invalid integer value "${timeout}" for connection option "connect_timeout"`);
    // libpq: zero, negative or not given means wait indefinitely; below 2 s counts as 2 s.
    if (t > 0) settings.connect_timeout = Math.max(t, 2);
  }
  for (const [k, v] of Object.entries({ ...fromService, ...fromConninfo })) if (!WRITTEN_BY_NAME.has(k)) settings.extra[k] = v;
  // Set through the environment only (PGSSLCRL, PGOPTIONS, PGTARGETSESSIONATTRS, ...): -R writes them too, as
  // pg_basebackup does (it writes what libpq's PQconninfo reports, whatever set it).
  for (const key of ENV_WRITTEN) {
    const name = LIBPQ_KEYWORDS.get(key)?.env;
    if (name === undefined || key in settings.extra) continue;
    const v = env[name];
    if (v !== undefined && v !== '') settings.extra[key] = v;
  }
  return settings;
}

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** A keyword pgpitr cannot honour is refused, never ignored (see conninfo-keywords.ts). */
function refuseUnsupported(key: string, info: KeywordInfo, value: string | undefined, where: string): void {
  if (value === undefined || value === '') return;
  const t = info.treatment;
  if (t.kind === 'unsupported') {
    throw usageError(`connection option "${key}" is not supported by pgpitr (given in ${where})`, `remove it from ${where}`);
  }
  if (t.kind === 'only' && !t.values.includes(value)) {
    throw usageError(`connection option ${key}=${value} is not supported by pgpitr (given in ${where})`, `pgpitr supports ${t.values.map((v) => `${key}=${v}`).join(' and ')}`);
  }
}

/** libpq's compiled-in default on Debian is /var/run/postgresql; fall back to /tmp, then TCP. */
function defaultSocketDir(): string {
  for (const dir of ['/var/run/postgresql', '/tmp']) {
    if (existsSync(dir)) return dir;
  }
  return 'localhost';
}

/** A connection string for primary_conninfo (-R), values quoted as libpq expects. */
export function formatConninfo(values: Record<string, string | number | undefined>): string {
  return Object.entries(values)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${quoteConninfoValue(String(v))}`)
    .join(' ');
}

function quoteConninfoValue(v: string): string {
  if (/^[A-Za-z0-9_.\-/:]+$/.test(v)) return v;
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function describeTarget(s: ConnectionSettings): string {
  const where = s.host?.startsWith('/') ? `socket "${s.host}/.s.PGSQL.${s.port}"` : `"${s.host}" port ${s.port}`;
  return `server at ${where}${s.user ? ` as user "${s.user}"` : ''}`;
}

/** The role to connect as: the one given, else, as libpq, the name of this process's effective OS user (not $USER, which sudo and su may leave as it was). */
/**
 * The database a session asks for: the one given, else for an SQL session "postgres" (pgpitr's
 * SQL connections, as pgBackRest's pg-database; every session of one command the same), else the
 * user's name (a replication session's, which the server does not use).
 */
export function sessionDatabase(settings: ConnectionSettings, replication: string | null): string {
  return settings.dbname ?? (replication === null ? 'postgres' : effectiveUser(settings));
}

/**
 * The database field the password file is searched with: "replication" for a physical
 * replication session (pg_basebackup and pg_receivewal give libpq dbname=replication, whatever
 * PGDATABASE says), else the session's database.
 */
export function passwordFileDatabase(replication: string | null, database: string): string {
  return replication === 'true' ? 'replication' : database;
}

export function effectiveUser(settings: ConnectionSettings): string {
  if (settings.user !== undefined) return settings.user;
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'postgres'; // no passwd entry for this uid (a container's arbitrary uid)
  }
}
