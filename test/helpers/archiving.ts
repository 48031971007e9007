// Helpers of the archiving tests: waiting until the server reports a segment
// archived, and finding (to stop) the background process holding a spool lock.

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TestCluster } from '../harness/cluster.js';
import { parseStoredName } from '../../src/repo/layout.js';
import type { ArchivedFile } from '../../src/repo/archive-store.js';

/**
 * The complete files of a stanza's WAL archive, read straight from the disk (the tests' own
 * reading of docs/repository-format.md, synchronous for polling), sorted by name.
 */
export function archivedOnDisk(repo: string, stanza: string): ArchivedFile[] {
  const out: ArchivedFile[] = [];
  const scan = (dir: string, top: boolean) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        if (top && /^[0-9A-F]{16}$/.test(e.name)) scan(join(dir, e.name), false);
        continue;
      }
      const parsed = parseStoredName(e.name);
      if (!parsed) continue;
      const st = statSync(join(dir, e.name));
      out.push({ ...parsed, size: st.size, mtimeMs: st.mtimeMs });
    }
  };
  scan(join(repo, stanza, 'archive'), true);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function lastArchived(c: TestCluster): Promise<string> {
  return (await c.sql<{ last: string }>("select coalesce(last_archived_wal, '') as last from pg_stat_archiver"))[0]!.last;
}

export async function waitArchived(c: TestCluster, wal: string, seconds = 90): Promise<void> {
  for (let i = 0; i < seconds * 5; i++) {
    if ((await lastArchived(c)) >= wal) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`segment ${wal} was not archived in time:\n${c.logTail()}`);
}

/** The pid in `<dir>/<lock>.lock` (the background pusher or fetcher), or null. */
export function lockHolderPid(dir: string, lock: string): number | null {
  try {
    return (JSON.parse(readFileSync(join(dir, `${lock}.lock`), 'utf8')) as { pid: number }).pid;
  } catch {
    return null;
  }
}

/** Kills the background process holding `<dir>/<lock>.lock`, if any (test clean-up). */
export function killLockHolder(dir: string, lock: string): void {
  const pid = lockHolderPid(dir, lock);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * The prefetch directories of a spool for a stanza: archive-get's own (<spool>/<stanza>/archive-get)
 * and those of restores (<spool>/restore-<digest>/<stanza>/archive-get, commands/restore.ts).
 */
export function prefetchDirs(spool: string, stanza = 'main'): string[] {
  const restores = existsSync(spool) ? readdirSync(spool).filter((n) => n.startsWith('restore-')) : [];
  return [join(spool, stanza, 'archive-get'), ...restores.map((n) => join(spool, n, stanza, 'archive-get'))].filter((d) => existsSync(d));
}

/** Kills every background fetcher of a spool (test clean-up). */
export function killFetchers(spool: string, stanza = 'main'): void {
  for (const d of prefetchDirs(spool, stanza)) killLockHolder(d, 'fetcher');
}

const SEGMENT_NAME = /^[0-9A-F]{24}$/;

/** Segments the server has marked ready and the archiver has not yet had archived. */
export function readyCount(c: TestCluster): number {
  return readdirSync(join(c.dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready') && SEGMENT_NAME.test(f.slice(0, -6))).length;
}

/** Writes a little into the table filler (x int), switches segment, and names the segment it completed. */
export async function fillAndSwitch(c: TestCluster): Promise<string> {
  await c.sql('insert into filler select generate_series(1, 2000)');
  return (await c.sql<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name'))[0]!.name;
}

/** Waits until cond holds, checking every 100 ms; fails naming `what` after `seconds`. */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, seconds = 60): Promise<void> {
  for (let i = 0; i < seconds * 10; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
