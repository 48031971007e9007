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
    return f.holes.map((h) => {
      if (!Number.isInteger(h.timeline) || h.timeline < 1) throw new Error('a hole without its timeline');
      return { first: BigInt(h.first), last: BigInt(h.last), timeline: h.timeline, at: String(h.at) };
    });
  } catch (e) {
    throw new DamagedHolesError('ERR_STORAGE', `record of expired WAL "${displayPath(repo, path)}" is damaged: ${(e as Error).message}`, {
      hint: 'info and check report the WAL expire left out between standalone backups as gaps until the next expire writes it again',
    });
  }
}

/**
 * Rewrites the stanza's record: the holes this expire leaves (`now`, on every timeline up to
 * `timeline`), and those of earlier runs cut to what it does not keep (below `keepFrom`, outside
 * `kept`), to what `now` does not cover, and to what is above `firstKept` (the archive's first
 * segment from now on). Written before the WAL goes. A record that cannot be read fails the
 * expire before any WAL is removed (the expired backups are gone by then); a damaged one is replaced.
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
  let damaged = false;
  try {
    known = await readExpiredHoles(repo, stanza);
  } catch (e) {
    if (!(e instanceof DamagedHolesError)) throw e;
    known = [];
    damaged = true;
  }
  const at = new Date().toISOString();
  // What this run leaves out is left out on every timeline archived now: its bound wins there.
  const covered = now.map((h) => ({ fromSegNo: h.first, toSegNo: h.last }));
  const beyond = now.reduce((m, h) => (h.last + 1n > m ? h.last + 1n : m), keepFrom);
  const earlier = known.flatMap((h) => cut(h, kept, keepFrom)).flatMap((h) => cut(h, covered, beyond));
  const all = [...earlier, ...now.map((h) => ({ ...h, timeline, at }))].filter((h) => h.last >= firstKept);
  const holes = merge(all);
  if (holes.length === 0 && known.length === 0 && !damaged) return;
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

/** Holes sorted, adjacent ones of the same timeline bound as one (the earlier time of the two); they never overlap. */
function merge(holes: ExpiredHole[]): ExpiredHole[] {
  const sorted = [...holes].sort(byFirst);
  const out: ExpiredHole[] = [];
  for (const h of sorted) {
    const prev = out[out.length - 1];
    if (prev && h.first <= prev.last + 1n && h.timeline === prev.timeline) {
      if (h.last > prev.last) prev.last = h.last;
      if (h.at < prev.at) prev.at = h.at;
    } else out.push({ ...h });
  }
  return out;
}

/**
 * Whether the missing segments `from` to `to` (names; a gap where timelines meet names two) lie
 * wholly in holes expire made on those timelines: every segment in one whose bound covers both.
 */
export function insideExpiredHole(holes: ExpiredHole[], gap: { from: string; to: string }, segmentSize: number): boolean {
  const from = parseSegmentFileName(gap.from.slice(0, 24), segmentSize);
  const to = parseSegmentFileName(gap.to.slice(0, 24), segmentSize);
  if (from === null || to === null || to.segNo < from.segNo) return false;
  const tli = Math.max(from.timeline, to.timeline);
  let next = from.segNo; // the first segment not yet found in a hole
  for (const h of [...holes].sort(byFirst)) {
    if (h.timeline < tli || h.last < next) continue;
    if (h.first > next) return false;
    next = h.last + 1n;
    if (next > to.segNo) return true;
  }
  return false;
}

/** The holes a decision makes: between the kept ranges, and from the last of them to `keepFrom`. */
export function holesBetween(ranges: { fromSegNo: bigint; toSegNo: bigint }[], keepFrom: bigint): { first: bigint; last: bigint }[] {
  const sorted = ranges.map((r) => ({ first: r.fromSegNo, last: r.toSegNo })).sort(byFirst);
  const out: { first: bigint; last: bigint }[] = [];
  let end: bigint | null = null; // last segment kept so far
  for (const r of sorted) {
    if (end !== null && r.first > end + 1n) out.push({ first: end + 1n, last: r.first - 1n });
    end = end === null || r.last > end ? r.last : end;
  }
  if (end !== null && keepFrom > end + 1n) out.push({ first: end + 1n, last: keepFrom - 1n });
  return out;
}

function byFirst(a: { first: bigint }, b: { first: bigint }): number {
  return a.first < b.first ? -1 : a.first > b.first ? 1 : 0;
}
