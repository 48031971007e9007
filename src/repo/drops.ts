// WAL that asynchronous archive-push dropped because its queue passed
// archive-push-queue-max: one JSON record per drop, in
// <repo>/<stanza>/archive-drops/<time>-<first segment>.json, written durably
// before any segment is let go, so that info and check can say which range is
// missing from the archive and why.

import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { storageError } from '../common/errors.js';
import { writeFileAtomicSync } from '../storage/durable.js';
import { stanzaDir } from './layout.js';

export interface DropRecord {
  first: string;
  last: string;
  count: number;
  queued_bytes: number;
  queue_max_bytes: number;
  host: string;
  pg_wal: string;
  at: string;
}

export function dropsDir(repo: string, stanza: string): string {
  return join(stanzaDir(repo, stanza), 'archive-drops');
}

export function recordDrop(repo: string, stanza: string, record: DropRecord): void {
  const dir = dropsDir(repo, stanza);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
  } catch (e) {
    throw storageError('create directory', dir, e);
  }
  const stamp = record.at.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  writeFileAtomicSync(join(dir, `${stamp}-${record.first}.json`), `${JSON.stringify(record, null, 2)}\n`, true, 0o640);
}

/** Every drop recorded for a stanza, oldest first. */
export function listDrops(repo: string, stanza: string): DropRecord[] {
  const dir = dropsDir(repo, stanza);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storageError('read directory', dir, e);
  }
  return entries
    .filter((e) => e.endsWith('.json'))
    .sort()
    .map((e) => JSON.parse(readFileSync(join(dir, e), 'utf8')) as DropRecord);
}
