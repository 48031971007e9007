// WAL that expire left out on purpose: below the oldest backup kept with the WAL
// after it, a standalone-pinned backup keeps only its own range (retention.ts),
// so the archive has holes between those ranges. expire records each hole here
// (<repo>/<stanza>/archive-expired.json) before it removes the WAL inside, so
// that info can say why that WAL is missing and check does not take it for a
// fault of archiving. A gap that is not inside a recorded hole is a gap as
// before. Holes below the archive's first segment are forgotten: no gap is there.

import { PgpitrError } from '../common/errors.js';
import { readAll } from '../storage/storage.js';
import { parseSegmentFileName } from '../postgres/lsn.js';
import { expiredHolesPath } from './layout.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';

/** Segment numbers (whatever the timeline) from `first` to `last`, both removed by expire. */
export interface ExpiredHole {
  first: bigint;
  last: bigint;
}

interface HolesFile {
  format: 'pgpitr-expired-wal';
  /** Segment numbers as decimal strings. */
  holes: { first: string; last: string; at: string }[];
}

export async function readExpiredHoles(repo: Repository, stanza: string): Promise<ExpiredHole[]> {
  const path = expiredHolesPath(stanza);
  const data = await readAll(repo.storage, path);
  if (data === null) return [];
  try {
    const f = JSON.parse(data.toString('utf8')) as HolesFile;
    if (f.format !== 'pgpitr-expired-wal' || !Array.isArray(f.holes)) throw new Error('not a record of expired WAL');
    return f.holes.map((h) => ({ first: BigInt(h.first), last: BigInt(h.last) }));
  } catch (e) {
    throw new PgpitrError('ERR_STORAGE', `record of expired WAL "${displayPath(repo, path)}" is damaged: ${(e as Error).message}`, {
      hint: 'remove it: info and check then report the WAL expire left out between standalone backups as gaps, until the next expire records them again',
    });
  }
}

/**
 * Adds `holes` to the stanza's record, forgetting those that end before `firstKept` (the
 * archive's first segment from now on: nothing below it is a gap). Written before the WAL goes.
 */
export async function recordExpiredHoles(repo: Repository, stanza: string, holes: ExpiredHole[], firstKept: bigint): Promise<void> {
  const known = await readExpiredHoles(repo, stanza).catch(() => []);
  const at = new Date().toISOString();
  const all = [...known, ...holes].filter((h) => h.last >= firstKept).sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: ExpiredHole[] = [];
  for (const h of all) {
    const prev = merged[merged.length - 1];
    if (prev && h.first <= prev.last + 1n) prev.last = h.last > prev.last ? h.last : prev.last;
    else merged.push({ ...h });
  }
  if (merged.length === 0 && known.length === 0) return;
  const file: HolesFile = { format: 'pgpitr-expired-wal', holes: merged.map((h) => ({ first: String(h.first), last: String(h.last), at })) };
  await repo.storage.write(expiredHolesPath(stanza), Buffer.from(`${JSON.stringify(file, null, 2)}\n`));
}

/** Whether the missing segments `from` to `to` (names) lie inside a hole expire made. */
export function insideExpiredHole(holes: ExpiredHole[], gap: { from: string; to: string }, segmentSize: number): boolean {
  const from = parseSegmentFileName(gap.from.slice(0, 24), segmentSize)?.segNo;
  const to = parseSegmentFileName(gap.to.slice(0, 24), segmentSize)?.segNo;
  if (from === undefined || to === undefined) return false;
  return holes.some((h) => from >= h.first && to <= h.last);
}

/** The holes a decision makes: between the standalone ranges, and from the last of them to `keepFrom`. */
export function holesBetween(ranges: { fromSegNo: bigint; toSegNo: bigint }[], keepFrom: bigint): ExpiredHole[] {
  const sorted = [...ranges].sort((a, b) => (a.fromSegNo < b.fromSegNo ? -1 : a.fromSegNo > b.fromSegNo ? 1 : 0));
  const out: ExpiredHole[] = [];
  let end: bigint | null = null; // last segment kept so far
  for (const r of sorted) {
    if (end !== null && r.fromSegNo > end + 1n) out.push({ first: end + 1n, last: r.fromSegNo - 1n });
    end = end === null || r.toSegNo > end ? r.toSegNo : end;
  }
  if (end !== null && keepFrom > end + 1n) out.push({ first: end + 1n, last: keepFrom - 1n });
  return out;
}
