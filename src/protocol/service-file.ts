// Connection service files, read as libpq reads them (parseServiceInfo): the
// service named by `service` or PGSERVICE is looked up in PGSERVICEFILE (else
// ~/.pg_service.conf), then in PGSYSCONFDIR/pg_service.conf (else Debian's
// /etc/postgresql-common/pg_service.conf). A section "[name]" holds "keyword=value"
// lines; a keyword libpq does not know is an error, as in libpq, never ignored.

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usageError } from '../common/errors.js';
import { LIBPQ_KEYWORDS } from './conninfo-keywords.js';

/** Debian's libpq is built with this sysconfdir. */
const DEFAULT_SYSCONFDIR = '/etc/postgresql-common';

export interface ServiceDefinition {
  file: string;
  values: Record<string, string>;
}

export function readService(name: string, env: NodeJS.ProcessEnv = process.env): ServiceDefinition {
  const files = [env.PGSERVICEFILE || join(homedir(), '.pg_service.conf'), join(env.PGSYSCONFDIR || DEFAULT_SYSCONFDIR, 'pg_service.conf')];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw usageError(`could not open service file "${file}": ${(e as Error).message}`);
    }
    const values = findService(text, file, name);
    if (values !== null) return { file, values };
  }
  throw usageError(`definition of service "${name}" not found`, `define [${name}] in ${files.join(' or ')}, or do not set service / PGSERVICE`);
}

/** The section's values, or null when the file has no such section. */
function findService(text: string, file: string, name: string): Record<string, string> | null {
  let inSection = false;
  let found = false;
  const values: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      if (found) break; // the next section: done
      inSection = line === `[${name}]`;
      found = inSection;
      continue;
    }
    if (!inSection) continue;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq).trim();
    if (eq < 0) throw usageError(`syntax error in service file "${file}", line ${i + 1}`, 'each line of a service is keyword=value');
    if (key === 'service') throw usageError(`nested "service" specifications not supported in service file "${file}", line ${i + 1}`);
    if (!LIBPQ_KEYWORDS.has(key)) throw usageError(`syntax error in service file "${file}", line ${i + 1}`, `"${key}" is not a connection option`);
    values[key] = line.slice(eq + 1).trim();
  }
  return found ? values : null;
}
