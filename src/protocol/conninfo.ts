// libpq-style connection settings: a `-d` value that is a conninfo string
// ("host=... port=...") or a postgresql:// URI, the -h/-p/-U flags (which override
// it, as in libpq's expand_dbname), and the PG* environment variables.
// ~/.pgpass and PGPASSWORD are read by node-postgres itself.

import { existsSync } from 'node:fs';
import { usageError } from '../common/errors.js';

export interface ConnectionSettings {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  dbname?: string;
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  application_name?: string;
  connect_timeout?: number;
  /** Remaining keywords, kept so -R can write them into primary_conninfo. */
  extra: Record<string, string>;
}

const KNOWN = new Set(['host', 'hostaddr', 'port', 'user', 'password', 'dbname', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name', 'connect_timeout']);

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

export function parseConnectionUri(uri: string): Record<string, string> {
  let url: URL;
  try {
    // URL() does not know the scheme's authority rules for a host list; PostgreSQL URIs
    // are close enough to http ones for the single-host case we accept here.
    url = new URL(uri.replace(/^postgres(ql)?:/, 'http:'));
  } catch {
    throw usageError(`invalid connection URI "${redactUri(uri)}"`);
  }
  const out: Record<string, string> = {};
  if (url.hostname) out.host = decodeURIComponent(url.hostname.replace(/^\[|\]$/g, ''));
  if (url.port) out.port = url.port;
  if (url.username) out.user = decodeURIComponent(url.username);
  if (url.password) out.password = decodeURIComponent(url.password);
  const db = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (db) out.dbname = db;
  for (const [k, v] of url.searchParams) out[k] = v;
  return out;
}

function redactUri(uri: string): string {
  return uri.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
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

/** Resolve flags + environment into settings, libpq precedence: flags > -d conninfo > environment > defaults. */
export function resolveConnectionSettings(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  let fromConninfo: Record<string, string> = {};
  if (flags.dbname !== undefined) {
    if (/^postgres(ql)?:\/\//.test(flags.dbname)) fromConninfo = parseConnectionUri(flags.dbname);
    else if (flags.dbname.includes('=')) fromConninfo = parseConninfoString(flags.dbname);
    else fromConninfo = { dbname: flags.dbname };
  }
  const pick = (key: string, flag: string | undefined, envName: string): string | undefined =>
    flag ?? fromConninfo[key] ?? env[envName] ?? undefined;

  const settings: ConnectionSettings = { extra: {} };
  const host = pick('host', flags.host, 'PGHOST') ?? (fromConninfo.hostaddr ?? env.PGHOSTADDR);
  settings.host = host ?? defaultSocketDir();
  const port = pick('port', flags.port, 'PGPORT');
  if (port !== undefined) {
    const p = Number(port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw usageError(`invalid port number "${port}"`, 'a port is an integer between 1 and 65535');
    settings.port = p;
  } else settings.port = 5432;
  const user = pick('user', flags.user, 'PGUSER');
  if (user !== undefined) settings.user = user;
  const password = fromConninfo.password ?? env.PGPASSWORD;
  if (password !== undefined) settings.password = password;
  const dbname = fromConninfo.dbname ?? env.PGDATABASE;
  if (dbname !== undefined) settings.dbname = dbname;
  for (const [key, envName] of [
    ['sslmode', 'PGSSLMODE'],
    ['sslrootcert', 'PGSSLROOTCERT'],
    ['sslcert', 'PGSSLCERT'],
    ['sslkey', 'PGSSLKEY'],
    ['application_name', 'PGAPPNAME'],
  ] as const) {
    const v = fromConninfo[key] ?? env[envName];
    if (v !== undefined) settings[key] = v;
  }
  const timeout = fromConninfo.connect_timeout ?? env.PGCONNECT_TIMEOUT;
  if (timeout !== undefined) settings.connect_timeout = Number(timeout);
  for (const [k, v] of Object.entries(fromConninfo)) if (!KNOWN.has(k)) settings.extra[k] = v;
  return settings;
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
