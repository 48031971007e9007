// WAL that asynchronous archive-push dropped because its queue passed
// archive-push-queue-max: one JSON record per drop, in
// <repo>/<stanza>/archive-drops/<time>-<first segment>.json, written durably
// before any segment is let go, so that info and check can say which range is
// missing from the archive and why.

import { PgpitrError } from '../common/errors.js';
import { readAll } from '../storage/storage.js';
import { storageJoin } from '../storage/storage-path.js';
import { dropsPath, stanzaRecordPath } from './layout.js';
import { parseSegmentFileName } from '../postgres/lsn.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';

export interface DropRecord {
  first: string;
  last: string;
  count: number;
  queued_bytes: number;
  queue_max_bytes: number;
  host: string;
  pg_wal: string;
  at: string;
  /**
   * The database system whose WAL was dropped (its first segment's header): a record is kept only
   * in a stanza of that system. Absent: written by an older pgpitr, or the segment could not be read.
   */
  system_identifier?: string;
}

export async function recordDrop(repo: Repository, stanza: string, record: DropRecord): Promise<void> {
  const stamp = record.at.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  await repo.storage.write(storageJoin(dropsPath(stanza), `${stamp}-${record.first}.json`), Buffer.from(`${JSON.stringify(record, null, 2)}\n`));
}

/**
 * Every drop recorded for a stanza, oldest first: those of its own system's WAL (records of another
 * system, whose server's archive_command named this stanza, were never its WAL: left out).
 */
export async function listDrops(repo: Repository, stanza: string): Promise<DropRecord[]> {
  const dir = dropsPath(stanza);
  const names = (await repo.storage.list(dir, { detail: false }))
    .map((e) => e.name)
    .filter((n) => n.endsWith('.json'))
    .sort();
  const out: DropRecord[] = [];
  const systemId = names.length === 0 ? undefined : (await readAll(repo.storage, stanzaRecordPath(stanza)).then((d) => d && (JSON.parse(d.toString('utf8')) as { system_identifier?: string }).system_identifier).catch(() => undefined)) ?? undefined;
  for (const name of names) {
    const data = await readAll(repo.storage, storageJoin(dir, name));
    if (data === null) continue;
    try {
      const record = JSON.parse(data.toString('utf8')) as DropRecord;
      if (systemId === undefined || record.system_identifier === undefined || record.system_identifier === systemId) out.push(record);
    } catch (e) {
      throw new PgpitrError('ERR_STORAGE', `drop record "${displayPath(repo, storageJoin(dir, name))}" is damaged: ${(e as Error).message}`, { hint: 'restore it from a copy of the repository, or remove it' });
    }
  }
  return out;
}

/**
 * The storage paths of the drop records whose whole range lies before segment `keepFromSegNo`,
 * and outside the ranges still `kept` below it (a standalone backup's): the WAL around them has
 * left the archive (expire removes them with it). A record that cannot be read or parsed is kept
 * (info and check name it).
 */
export async function dropsBefore(repo: Repository, stanza: string, keepFromSegNo: bigint, segmentSize: number, kept: { fromSegNo: bigint; toSegNo: bigint }[] = []): Promise<string[]> {
  const dir = dropsPath(stanza);
  const out: string[] = [];
  for (const e of await repo.storage.list(dir, { detail: false })) {
    if (!e.name.endsWith('.json')) continue;
    const path = storageJoin(dir, e.name);
    try {
      const data = await readAll(repo.storage, path);
      const record = data === null ? null : (JSON.parse(data.toString('utf8')) as DropRecord);
      const first = record === null ? null : parseSegmentFileName(String(record.first), segmentSize);
      const last = record === null ? null : parseSegmentFileName(String(record.last), segmentSize);
      if (first === null || last === null || last.segNo >= keepFromSegNo) continue;
      if (!kept.some((r) => first.segNo <= r.toSegNo && last.segNo >= r.fromSegNo)) out.push(path);
    } catch {
      /* kept */
    }
  }
  return out;
}
