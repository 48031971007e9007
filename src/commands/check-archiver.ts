// check's word on the server's archiver alone (pg_stat_archiver), for when no
// repository can be judged (each has said what is wrong with it): a failing
// archive_command is then seen beside its cause, and pg_wal's growth with it.

import type { Finding } from './check-finding.js';

interface Query {
  query<R>(text: string): Promise<{ rows: R[] }>;
}

/** pg_stat_archiver's one row: the last file archived and the last failure, times in ms since the epoch. */
export interface ArchiverState {
  last: string | null;
  lastAtMs: number | null;
  failed: string | null;
  failedAtMs: number | null;
  failedCount: string;
}

export async function readArchiver(client: Query): Promise<ArchiverState | null> {
  const a = (
    await client.query<{ last: string | null; last_at: string | number | null; failed: string | null; failed_at: string | number | null; failed_count: string }>(
      'select last_archived_wal as last, (extract(epoch from last_archived_time) * 1000)::float8 as last_at, last_failed_wal as failed, (extract(epoch from last_failed_time) * 1000)::float8 as failed_at, failed_count::text from pg_stat_archiver',
    )
  ).rows[0];
  const ms = (v: string | number | null) => (v === null ? null : Number(v));
  return a ? { last: a.last, lastAtMs: ms(a.last_at), failed: a.failed, failedAtMs: ms(a.failed_at), failedCount: a.failed_count } : null;
}

export async function archiverFinding(client: Query): Promise<Finding | null> {
  const a = await readArchiver(client);
  if (!a) return null;
  const at = (v: number) => new Date(v).toISOString();
  const last = a.last !== null && a.lastAtMs !== null ? `the last file archived was ${a.last} at ${at(a.lastAtMs)}` : 'it reports no file archived';
  if (a.failed !== null && a.failedAtMs !== null && (a.lastAtMs === null || a.failedAtMs > a.lastAtMs)) {
    return {
      check: 'archiving',
      ok: false,
      message: `the server's archiver is failing (pg_stat_archiver: ${a.failedCount} failure(s), ${a.failed} last at ${at(a.failedAtMs)}); ${last}: pg_wal keeps every segment it has not archived`,
      hint: 'fix what the findings above say of the repository; the server log holds archive_command\'s own errors',
    };
  }
  return { check: 'archiving', ok: true, message: `warning: not judged against the repository (see above); the server's archiver does not fail now: ${last}` };
}
