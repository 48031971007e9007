// WAL that expire left out on purpose: below the oldest backup kept with the WAL
// after it, a standalone-pinned backup keeps only its own range (retention.ts),
// so the archive has holes between those ranges. Each expire rewrites the record
// of them (<repo>/<stanza>/archive-expired.json) before it removes the WAL inside:
// what it leaves out now, and what earlier runs left out that it does not keep
// now (a hole it keeps again, after a pin or a policy change, is forgotten: WAL
// missing there is a gap again). info then says why that WAL is missing, and
// check does not take it for a fault of archiving. A hole covers the timelines
// archived when it was made: a timeline begun later (a restore promoted inside
// it) has its own gaps there. Holes below the archive's first segment are
// forgotten: no gap is there.

import { PgpitrError } from '../common/errors.js';
import { readAll } from '../storage/storage.js';
import { parseSegmentFileName } from '../postgres/lsn.js';
import { expiredHolesPath } from './layout.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';

/** Segment numbers from `first` to `last`, both removed by expire on timelines up to `timeline`. */
export interface ExpiredHole {
  first: bigint;
  last: bigint;
  timeline: number;
  /** When expire first left it out. */
  at: string;
}

interface HolesFile {
  format: 'pgpitr-expired-wal';
  /** Segment numbers as decimal strings. */
  holes: { first: string; last: string; timeline: number; at: string }[];
}

/** The record exists and is not one (bad JSON, another format): rewritten by the next expire. */
export class DamagedHolesError extends PgpitrError {}

export async function readExpiredHoles(repo: Repository, stanza: string): Promise<ExpiredHole[]> {
  const path = expiredHolesPath(stanza);
  const data = await readAll(repo.storage, path);
  if (data === null) return [];
  try {
    const f = JSON.parse(data.toString('utf8')) as HolesFile;
    if (f.format !== 'pgpitr-expired-wal' || !Array.isArray(f.holes)) throw new Error('not a record of expired WAL');
    return f.holes.map((h) => ({ first: BigInt(h.first), last: BigInt(h.last), timeline: Number(h.timeline), at: String(h.at) }));
  } catch (e) {
    throw new DamagedHolesError('ERR_STORAGE', `record of expired WAL "${displayPath(repo, path)}" is damaged: ${(e as Error).message}`, {
      hint: 'info and check report the WAL expire left out between standalone backups as gaps until the next expire writes it again',
    });
  }
}

/**
 * Rewrites the stanza's record: the holes this expire leaves (`now`), and those of earlier runs
 * cut to what it does not keep (below `keepFrom`, outside `kept`) and to what is above `firstKept`
 * (the archive's first segment from now on). Written before the WAL goes. A record that cannot
 * be read fails the expire (nothing removed); a damaged one is replaced.
 */
export async function recordExpiredHoles(
  repo: Repository,
  stanza: string,
  now: { first: bigint; last: bigint }[],
  kept: { fromSegNo: bigint; toSegNo: bigint }[],
  keepFrom: bigint,
  firstKept: bigint,
  timeline: number,
): Promise<void> {
  let known: ExpiredHole[];
  try {
    known = await readExpiredHoles(repo, stanza);
  } catch (e) {
    if (!(e instanceof DamagedHolesError)) throw e;
    known = [];
  }
  const at = new Date().toISOString();
  const earlier = known.flatMap((h) => cut(h, kept, keepFrom));
  const all = [...earlier, ...now.map((h) => ({ ...h, timeline, at }))].filter((h) => h.last >= firstKept);
  const holes = merge(all);
  if (holes.length === 0 && known.length === 0) return;
  const file: HolesFile = { format: 'pgpitr-expired-wal', holes: holes.map((h) => ({ first: String(h.first), last: String(h.last), timeline: h.timeline, at: h.at })) };
  await repo.storage.write(expiredHolesPath(stanza), Buffer.from(`${JSON.stringify(file, null, 2)}\n`));
}

/** The parts of `h` below `keepFrom` and outside every kept range. */
function cut(h: ExpiredHole, kept: { fromSegNo: bigint; toSegNo: bigint }[], keepFrom: bigint): ExpiredHole[] {
  let parts: ExpiredHole[] = h.first < keepFrom ? [{ ...h, last: h.last < keepFrom ? h.last : keepFrom - 1n }] : [];
  for (const r of kept) {
    parts = parts.flatMap((p) => {
      if (p.last < r.fromSegNo || p.first > r.toSegNo) return [p];
      const out: ExpiredHole[] = [];
      if (p.first < r.fromSegNo) out.push({ ...p, last: r.fromSegNo - 1n });
      if (p.last > r.toSegNo) out.push({ ...p, first: r.toSegNo + 1n });
      return out;
    });
  }
  return parts;
}

/** Overlapping or adjacent holes as one (the lower timeline bound and the earlier time of the two). */
function merge(holes: ExpiredHole[]): ExpiredHole[] {
  const sorted = [...holes].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const out: ExpiredHole[] = [];
  for (const h of sorted) {
    const prev = out[out.length - 1];
    if (prev && h.first <= prev.last + 1n) {
      if (h.last > prev.last) prev.last = h.last;
      prev.timeline = Math.min(prev.timeline, h.timeline);
      if (h.at < prev.at) prev.at = h.at;
    } else out.push({ ...h });
  }
  return out;
}

/** Whether the missing segments `from` to `to` (names, one timeline) lie inside a hole expire made on that timeline. */
export function insideExpiredHole(holes: ExpiredHole[], gap: { from: string; to: string }, segmentSize: number): boolean {
  const from = parseSegmentFileName(gap.from.slice(0, 24), segmentSize);
  const to = parseSegmentFileName(gap.to.slice(0, 24), segmentSize);
  if (from === null || to === null) return false;
  return holes.some((h) => from.segNo >= h.first && to.segNo <= h.last && from.timeline <= h.timeline && to.timeline <= h.timeline);
}

/** The holes a decision makes: between the kept ranges, and from the last of them to `keepFrom`. */
export function holesBetween(ranges: { fromSegNo: bigint; toSegNo: bigint }[], keepFrom: bigint): { first: bigint; last: bigint }[] {
  const sorted = [...ranges].sort((a, b) => (a.fromSegNo < b.fromSegNo ? -1 : a.fromSegNo > b.fromSegNo ? 1 : 0));
  const out: { first: bigint; last: bigint }[] = [];
  let end: bigint | null = null; // last segment kept so far
  for (const r of sorted) {
    if (end !== null && r.fromSegNo > end + 1n) out.push({ first: end + 1n, last: r.fromSegNo - 1n });
    end = end === null || r.toSegNo > end ? r.toSegNo : end;
  }
  if (end !== null && keepFrom > end + 1n) out.push({ first: end + 1n, last: keepFrom - 1n });
  return out;
}
