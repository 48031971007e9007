// The stanza's restore point index: for each archived segment, a small record
// of what it holds for a search for a named recovery target (the restore points
// whose record begins in it; whether the record running on into the next
// segment is, or may be, one; whether the WAL ends inside it), written by the
// push that stores the segment, one directory per 256 segments as in the archive:
//   <stanza>/restore-points/<TTTTTTTTXXXXXXXX>/<segment>-<sha256>.json
// restore --target-name reads the records of the segments it passes instead of
// the segments themselves, and reads a segment only when its record is missing
// (a segment archived by an earlier pgpitr, a record lost or never written: the
// index is an aid, never an authority) or cannot be read, or says the point
// runs on into the next one. A record counts only for the content its name
// gives (the stored segment's SHA-256): one a killed push left for content never
// stored, or for an expired segment, says nothing. So records need no sync and
// no order with their segment: a record lost in a crash only costs a read.
// A record also keeps the XXH3-128 of its segment's content, which recovery's
// archive-get checks a fetched segment against instead of its SHA-256 (indexedDigest).

import { readAll } from '../storage/storage.js';
import { storageJoin } from '../storage/storage-path.js';
import { crc32c } from '../storage/filter/crc32c.js';
import { formatLsn, parseLsn, parseSegmentFileName } from '../postgres/lsn.js';
import { segmentRestorePoints } from '../postgres/segment-restore-points.js';
import type { SegmentRestorePoints } from '../postgres/segment-restore-points.js';
import { restorePointIndexPath, walFileKind } from './layout.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';

/** What a push records of a segment: its restore points, and the XXH3-128 of its content (null: not computed). */
export type IndexedSegment = SegmentRestorePoints & { xxh128: string | null };

/**
 * The XXH3-128 (hex) of `data`; null when it cannot be computed (neither libxxhash nor its
 * WebAssembly build loads): a push then records none, and a fetch checks the SHA-256. Loaded on
 * first use: archive-push and archive-get start without it.
 */
export async function contentXxh128(data: Uint8Array): Promise<string | null> {
  try {
    return (await import('../storage/filter/xxh128.js')).xxh128Hex(data);
  } catch {
    return null;
  }
}

const entryName = (segment: string, sha256: string): string => `${segment}-${sha256}.json`;
/** The directory of a segment's records. */
const entryDir = (stanza: string, segment: string): string => storageJoin(restorePointIndexPath(stanza), segment.slice(0, 16));
const ENTRY = /^([0-9A-F]{24})-[0-9a-f]{64}\.json(?:\.tmp-[^/]+)?$/; // and what a killed push left

interface EntryFile {
  segment: string;
  sha256: string;
  points: { lsn: string; end: string; name: string; time_ms: number }[];
  crosses: boolean;
  ends: boolean;
  /** The content's XXH3-128 (absent from records older pgpitr wrote). */
  xxh128?: string;
}

/**
 * What a segment about to be archived holds for the index; null for anything but a whole segment
 * (recovery reads no .partial file by its segment's name), or when the walk fails: no record then.
 */
export async function restorePointsToIndex(name: string, data: Buffer, segmentSize: number): Promise<IndexedSegment | null> {
  if (walFileKind(name) !== 'segment' || data.length !== segmentSize) return null;
  const seg = parseSegmentFileName(name, segmentSize);
  if (seg === null) return null;
  let points: SegmentRestorePoints;
  try {
    points = segmentRestorePoints(seg.segNo * BigInt(segmentSize), data, crc32c);
  } catch {
    return null;
  }
  return { ...points, xxh128: await contentXxh128(data) };
}

/**
 * The XXH3-128 of a segment's content (its SHA-256 `sha256`) recorded by its push; null when there
 * is none (an older record, none, one that cannot be read). A segment fetched for recovery that
 * matches it is the content pushed, as surely against damage as by its SHA-256 (XXH3-128 is what
 * backup sets record of each file: repo/backup-set/content-digest.ts) for an eighth of the CPU;
 * one that does not is checked against its SHA-256 (the record may be the damaged one).
 */
export async function indexedDigest(repo: Repository, stanza: string, segment: string, sha256: string): Promise<string | null> {
  try {
    const data = await readAll(repo.storage, storageJoin(entryDir(stanza, segment), entryName(segment, sha256)));
    if (data === null) return null;
    const e = JSON.parse(data.toString('utf8')) as Partial<EntryFile>;
    return e.segment === segment && e.sha256 === sha256 && typeof e.xxh128 === 'string' && /^[0-9a-f]{32}$/.test(e.xxh128) ? e.xxh128 : null;
  } catch {
    return null;
  }
}

/**
 * Writes a segment's record (atomic, not synced); never fails the push: without its record a
 * segment is read.
 */
export async function indexRestorePoints(repo: Repository, stanza: string, segment: string, sha256: string, s: IndexedSegment | null): Promise<void> {
  if (s === null) return;
  try {
    const entry: EntryFile = {
      segment,
      sha256,
      points: s.points.map((p) => ({ lsn: formatLsn(p.lsn), end: formatLsn(p.end), name: p.name, time_ms: p.timeMs })),
      crosses: s.crosses,
      ends: s.ends,
      ...(s.xxh128 === null ? {} : { xxh128: s.xxh128 }),
    };
    await repo.storage.write(storageJoin(entryDir(stanza, segment), entryName(segment, sha256)), Buffer.from(JSON.stringify(entry) + '\n'), { atomic: true, sync: false });
  } catch {
    /* the segment is read instead */
  }
}

/**
 * Takes back a push's record when its segment was not stored (a stanza deleted meanwhile must be
 * left empty); quiet: a record left behind says nothing of other content, and costs nothing.
 */
export async function unindexRestorePoints(repo: Repository, stanza: string, segment: string, sha256: string): Promise<void> {
  await repo.storage.remove(storageJoin(entryDir(stanza, segment), entryName(segment, sha256))).catch(() => {});
}

/** The records of a stanza's archive, listed and read as a search reaches their segments. */
export interface RestorePointIndex {
  /**
   * What the segment (with this content) holds; undefined when the index cannot say (no record,
   * or one that cannot be read: said by `warn`): the segment itself must be read.
   */
  entry(segment: string, sha256: string): Promise<SegmentRestorePoints | undefined>;
}

/** The index: one listing per 256 segments (a directory of the archive) asked about, each record read once. */
export function openRestorePointIndex(repo: Repository, stanza: string, warn: (line: string) => void): RestorePointIndex {
  const listed = new Map<string, Promise<Set<string>>>();
  const read = new Map<string, Promise<SegmentRestorePoints | undefined>>();
  const namesFor = (segment: string): Promise<Set<string>> => {
    const dir = entryDir(stanza, segment);
    let names = listed.get(dir);
    if (names === undefined) {
      names = repo.storage.list(dir, { detail: false }).then(
        (entries) => new Set(entries.filter((e) => e.type === 'file').map((e) => e.name)),
        (e: Error) => {
          warn(`warning: the restore point index ${displayPath(repo, dir)} could not be listed (${e.message}): its segments are read instead`);
          return new Set<string>();
        },
      );
      listed.set(dir, names);
    }
    return names;
  };
  const load = async (segment: string, sha256: string): Promise<SegmentRestorePoints | undefined> => {
    const name = entryName(segment, sha256);
    if (!(await namesFor(segment)).has(name)) return undefined;
    const path = storageJoin(entryDir(stanza, segment), name);
    try {
      const data = await readAll(repo.storage, path);
      if (data === null) throw new Error('it disappeared after the listing');
      const e = JSON.parse(data.toString('utf8')) as EntryFile;
      if (e.segment !== segment || e.sha256 !== sha256) throw new Error('it names another segment');
      if (!Array.isArray(e.points) || typeof e.crosses !== 'boolean' || typeof e.ends !== 'boolean') throw new Error('it is incomplete');
      const points = e.points.map((p) => ({ lsn: parseLsn(p.lsn), end: parseLsn(p.end), name: String(p.name), timeMs: Number(p.time_ms) }));
      if (points.some((p) => !Number.isFinite(p.timeMs))) throw new Error('a restore point without its time');
      return { points, crosses: e.crosses, ends: e.ends };
    } catch (err) {
      warn(`warning: restore point index record ${displayPath(repo, path)} could not be read (${(err as Error).message}): segment ${segment} is read instead`);
      return undefined;
    }
  };
  return {
    entry(segment, sha256) {
      const key = `${segment}-${sha256}`;
      let e = read.get(key);
      if (e === undefined) read.set(key, (e = load(segment, sha256)));
      return e;
    },
  };
}

/**
 * The records (and temporary files of killed pushes) of segments `gone` says expire removed, now
 * or in an earlier run killed before it removed their records: what to remove; `dirs`: their
 * directories (pruned once emptied). One listing of the whole index, as expire lists the archive.
 */
export async function restorePointEntriesOf(repo: Repository, stanza: string, gone: (segment: string) => boolean): Promise<{ paths: string[]; dirs: string[] }> {
  const root = restorePointIndexPath(stanza);
  const paths: string[] = [];
  for (const e of await repo.storage.list(root, { recursive: true, detail: false })) {
    const segment = ENTRY.exec(e.name.slice(e.name.lastIndexOf('/') + 1))?.[1];
    if (e.type === 'file' && segment !== undefined && gone(segment)) paths.push(storageJoin(root, e.name));
  }
  return { paths, dirs: [...new Set(paths.map((p) => p.slice(0, p.lastIndexOf('/'))))] };
}
