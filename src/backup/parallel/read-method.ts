// Which way a parallel backup's workers read files. "direct": the data
// directory is on this host and readable by us (checked, not assumed: its
// pg_control must carry the server's system identifier, so a same-named
// directory of another cluster is never copied; its postmaster.pid must be the
// running server's, port and start time, so a copy of this cluster here, a
// replica's or a stopped one, is never taken for the server's own; and once the
// backup has started, its pg_control must hold the checkpoint the backup starts
// from, checkDirectSource). "sql": through the server's
// file functions over N connections, when this role may use them
// (sql-permission.ts). `auto` takes direct when it can, else sql when permitted,
// and refuses, saying why for both, when neither is possible.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { SqlClient } from '../../protocol/sql-client.js';
import type { ReadMethodChoice } from '../options.js';
import { PgpitrError } from '../../common/errors.js';
import { sqlReadRefusal } from './sql-permission.js';
import { controlCheckpointRedo } from '../../postgres/control-file.js';
import { formatLsn } from '../../postgres/lsn.js';

export interface DirectRead {
  method: 'direct';
  dataDirectory: string;
  /** stats_temp_directory (13, 14) relative to the data directory, when it is inside it. */
  statsTempDir?: string | undefined;
}

export interface SqlRead {
  method: 'sql';
  /** How the server's paths begin: its data_directory, or '.' (relative to it) when this role may not see that setting. */
  root: string;
  statsTempDir?: string | undefined;
}

export async function chooseReadMethod(sql: SqlClient, serverVersionNum: number, systemIdentifier: string, choice: ReadMethodChoice): Promise<DirectRead | SqlRead> {
  // stats_temp_directory (13, 14) is for superusers and pg_read_all_settings: pg_settings leaves it out for others (its default is excluded anyway).
  const statsTempDir = async () => {
    const v = serverVersionNum < 150000 ? (await sql.query<{ v: string }>(`SELECT setting AS v FROM pg_settings WHERE name = 'stats_temp_directory'`)).rows[0]?.v : undefined;
    return v && !v.startsWith('/') ? v : undefined;
  };
  if (choice !== 'sql') {
    const why = await directUnusable(sql, systemIdentifier);
    if (typeof why !== 'string') return { method: 'direct', dataDirectory: why.dataDirectory, statsTempDir: await statsTempDir() };
    if (choice === 'direct') {
      throw new PgpitrError('ERR_UNSUPPORTED', `cannot read the data directory directly: ${why}`, {
        hint: 'run the backup on the database host as a user that can read the data directory (its owner, or a member of its group with initdb -g), or use --read-method=sql, or leave out -j for one BASE_BACKUP stream',
      });
    }
    const refusal = await sqlReadRefusal(sql, serverVersionNum);
    if (refusal !== null) {
      throw new PgpitrError('ERR_UNSUPPORTED', `no read method for -j: cannot read the data directory directly (${why}), nor through SQL (${refusal.missing})`, {
        hint: `run the backup on the database host, or as a superuser give the role what it lacks: ${refusal.grants} (or leave out -j for one BASE_BACKUP stream)`,
      });
    }
  } else {
    const refusal = await sqlReadRefusal(sql, serverVersionNum);
    if (refusal !== null) {
      throw new PgpitrError('ERR_UNSUPPORTED', `cannot read the server's files through SQL: ${refusal.missing}`, {
        hint: `as a superuser run: ${refusal.grants} (or leave out -j for one BASE_BACKUP stream)`,
      });
    }
  }
  // data_directory is for superusers and pg_read_all_settings; pg_settings leaves out what this role may not see.
  const dir = (await sql.query<{ v: string }>(`SELECT setting AS v FROM pg_settings WHERE name = 'data_directory'`)).rows[0]?.v;
  return { method: 'sql', root: dir && dir.startsWith('/') ? dir : '.', statsTempDir: await statsTempDir() };
}

async function directUnusable(sql: SqlClient, systemIdentifier: string): Promise<{ dataDirectory: string } | string> {
  let dataDirectory: string | undefined;
  try {
    dataDirectory = await setting(sql, 'data_directory');
  } catch (e) {
    return `the server does not tell this role its data_directory (${(e as Error).message}); grant it pg_read_all_settings`;
  }
  if (!dataDirectory) return 'the server did not report its data_directory';
  const control = join(dataDirectory, 'global', 'pg_control');
  let fd: number;
  try {
    fd = openSync(control, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `"${control}" does not exist on this host (the server runs on another host)` : `"${control}" cannot be read here (${code})`;
  }
  const head = Buffer.alloc(8);
  try {
    readSync(fd, head, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  const local = head.readBigUInt64LE(0).toString();
  if (local !== systemIdentifier) return `"${dataDirectory}" on this host is database system ${local}, the server is ${systemIdentifier} (another cluster)`;
  const notOurs = await notTheServers(sql, dataDirectory);
  if (notOurs !== null) return notOurs;
  return { dataDirectory };
}

/**
 * PostgreSQL writes postmaster.pid before it records pg_postmaster_start_time(), and between
 * them removes temporary files, loads preloaded libraries and sets up shared memory: minutes on a
 * slow start. A copy's pid file is told apart by the checkpoint (checkDirectSource) as well.
 */
const START_TIME_SLACK_S = 1800;

/**
 * Why the data directory at this path on this host is not the running server's, or null when its
 * postmaster.pid says it is: same port, started when the server did. A copy of the cluster here
 * (a replica's data directory at the same path, a stopped copy restored from it) has the same
 * system identifier, and reading it would give a backup the WAL cannot make consistent.
 */
async function notTheServers(sql: SqlClient, dataDirectory: string): Promise<string | null> {
  const pidFile = join(dataDirectory, 'postmaster.pid');
  let lines: string[];
  try {
    lines = readFileSync(pidFile, 'utf8').split('\n');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `"${dataDirectory}" on this host has no postmaster.pid: no server runs on it here (the server reached is elsewhere, and this is a copy)` : `"${pidFile}" cannot be read here (${code})`;
  }
  const row = (await sql.query<{ t: string; p: string }>(`SELECT extract(epoch FROM pg_postmaster_start_time())::bigint::text AS t, current_setting('port') AS p`)).rows[0];
  const pidStart = Number(lines[2]);
  const serverStart = Number(row?.t);
  const samePort = lines[3]?.trim() === row?.p;
  const sameStart = Number.isFinite(pidStart) && Number.isFinite(serverStart) && serverStart - pidStart >= -1 && serverStart - pidStart <= START_TIME_SLACK_S;
  if (samePort && sameStart) return null;
  return `"${dataDirectory}" on this host belongs to another server than the one reached (its postmaster.pid: port ${lines[3]?.trim() ?? '?'}, started ${new Date(pidStart * 1000).toISOString()}; the server: port ${row?.p ?? '?'}, started ${new Date(serverStart * 1000).toISOString()}), a copy of the cluster`;
}

/**
 * After the backup started at `startLsn`: the data directory read directly must hold the
 * checkpoint the backup starts from (pg_backup_start made it, or on a standby the restartpoint it
 * starts from). An older one means these are not the server's files (a copy whose postmaster.pid
 * looked like the server's): refused before a file is copied.
 */
export function checkDirectSource(dataDirectory: string, startLsn: bigint): void {
  const redo = controlCheckpointRedo(dataDirectory);
  if (redo !== null && redo >= startLsn) return;
  throw new PgpitrError('ERR_TARGET', `the data directory "${dataDirectory}" on this host is not the server's: its last checkpoint${redo === null ? ' cannot be read' : ` starts at ${formatLsn(redo)}`}, the backup at ${formatLsn(startLsn)}`, {
    hint: 'this host holds a copy of the cluster at the server\'s path; run the backup on the database host, or use --read-method=sql',
  });
}

async function setting(sql: SqlClient, name: string): Promise<string | undefined> {
  const r = await sql.query<{ v: string }>(`SELECT current_setting($1) AS v`, [name]);
  return r.rows[0]?.v;
}
