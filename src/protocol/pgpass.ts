// The password file, read as libpq reads it (passwordFromFile): `passfile`, else
// PGPASSFILE, else ~/.pgpass; ignored with a warning when it is not a plain file or
// others may read it; lines "hostname:port:database:username:password" with `*`
// wildcards and `\` escapes. Read only when the server asks for a password.

import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionSettings } from './conninfo.js';

/** libpq's compiled-in socket directory on Debian, which ~/.pgpass calls "localhost". */
const DEFAULT_SOCKET_DIR = '/var/run/postgresql';

export interface PasswordLookup {
  host: string;
  port: string;
  dbname: string;
  user: string;
}

export function passwordFileName(settings: ConnectionSettings, env: NodeJS.ProcessEnv = process.env): string {
  return settings.passfile || env.PGPASSFILE || join(homedir(), '.pgpass');
}

/** The password for this connection from the password file, or undefined. */
export function passwordFromFile(settings: ConnectionSettings, user: string, warn: (m: string) => void, env: NodeJS.ProcessEnv = process.env, database?: string): string | undefined {
  const file = passwordFileName(settings, env);
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (!st.isFile()) {
    warn(`WARNING: password file "${file}" is not a plain file`);
    return undefined;
  }
  if ((st.mode & 0o077) !== 0) {
    warn(`WARNING: password file "${file}" has group or world access; permissions should be u=rw (0600) or less`);
    return undefined;
  }
  let host = settings.host || settings.hostaddr || 'localhost';
  if (host === DEFAULT_SOCKET_DIR) host = 'localhost';
  // The database the session asks for (passwordFileDatabase: "replication" for pg_basebackup's kind of session).
  const want: PasswordLookup = { host, port: String(settings.port ?? 5432), dbname: database ?? (settings.dbname || user), user };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const found = matchLine(line.replace(/\r$/, ''), want);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The password on this line when its four fields match, else undefined. */
function matchLine(line: string, want: PasswordLookup): string | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  const fields: string[] = [];
  let current = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) current += line[++i];
    else if (c === ':' && fields.length < 4) {
      fields.push(current);
      current = '';
    } else current += c;
  }
  if (fields.length < 4) return undefined;
  const [host, port, dbname, user] = fields as [string, string, string, string];
  const ok = (pattern: string, value: string) => pattern === '*' || pattern === value;
  return ok(host, want.host) && ok(port, want.port) && ok(dbname, want.dbname) && ok(user, want.user) ? current : undefined;
}
