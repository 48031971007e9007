// The stanza's restore point index: for each archived segment that holds a
// restore point (or whose last record, running on into the next segment, may be
// one, or in which the WAL ends), a small record of what it holds, written by
// the push that stores the segment, before the segment itself:
//   <stanza>/restore-points/<segment>-<sha256>.json
// A stanza created with the index (stanza.json "restore_point_index": 1) has
// such a record for every segment that needs one, so restore finds a named
// target by listing this directory and reading the records of the segments it
// passes, instead of reading every segment between the backup and the target.
// A record counts only for the segment content its name gives (the SHA-256 of
// the stored segment): one left by a push that never stored its segment, or
// by an expired segment, says nothing.

import { readAll } from '../storage/storage.js';
import { storageJoin } from '../storage/storage-path.js';
import { crc32c } from '../storage/filter/crc32c.js';
import { formatLsn, parseLsn, parseSegmentFileName } from '../postgres/lsn.js';
import { segmentRestorePoints, worthKeeping } from '../postgres/segment-restore-points.js';
import type { SegmentRestorePoints } from '../postgres/segment-restore-points.js';
import { restorePointIndexPath, walFileKind } from './layout.js';
import { hasRestorePointIndex } from './stanza.js';
import type { StanzaInfo } from './stanza.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';

const entryName = (segment: string, sha256: string): string => `${segment}-${sha256}.json`;

interface EntryFile {
  segment: string;
  sha256: string;
  points: { lsn: string; end: string; name: string; time_ms: number }[];
  crosses: boolean;
  ends: boolean;
}

/** Writes a segment's record (atomic, synced): before the segment is stored. */
export async function writeRestorePointEntry(repo: Repository, stanza: string, segment: string, sha256: string, s: SegmentRestorePoints): Promise<void> {
  const entry: EntryFile = {
    segment,
    sha256,
    points: s.points.map((p) => ({ lsn: formatLsn(p.lsn), end: formatLsn(p.end), name: p.name, time_ms: p.timeMs })),
    crosses: s.crosses,
    ends: s.ends,
  };
  await repo.storage.write(storageJoin(restorePointIndexPath(stanza), entryName(segment, sha256)), Buffer.from(JSON.stringify(entry) + '\n'), { atomic: true, sync: true });
}

/** The records of a stanza's archive, read when a search reaches their segment. */
export interface RestorePointIndex {
  /**
   * What the segment (with this content) holds: null when it has no record (nothing a search
   * needs), undefined when its record cannot be read (the segment itself must be, said by `warn`).
   */
  entry(segment: string, sha256: string): Promise<SegmentRestorePoints | null | undefined>;
}

/** The index as listed now (one listing; each record read when asked for); null when it cannot be listed (said by `warn`). */
export async function openRestorePointIndex(repo: Repository, stanza: string, warn: (line: string) => void): Promise<RestorePointIndex | null> {
  const dir = restorePointIndexPath(stanza);
  let names: Set<string>;
  try {
    names = new Set((await repo.storage.list(dir, { detail: false })).filter((e) => e.type === 'file').map((e) => e.name));
  } catch (e) {
    warn(`warning: the restore point index ${displayPath(repo, dir)} could not be listed (${(e as Error).message}): the archive is read instead`);
    return null;
  }
  return {
    async entry(segment, sha256) {
      const name = entryName(segment, sha256);
      if (!names.has(name)) return null;
      const path = storageJoin(dir, name);
      try {
        const data = await readAll(repo.storage, path);
        if (data === null) throw new Error('it disappeared after the listing');
        const e = JSON.parse(data.toString('utf8')) as EntryFile;
        if (e.segment !== segment || e.sha256 !== sha256 || !Array.isArray(e.points)) throw new Error('it names another segment');
        return {
          points: e.points.map((p) => ({ lsn: parseLsn(p.lsn), end: parseLsn(p.end), name: String(p.name), timeMs: Number(p.time_ms) })),
          crosses: e.crosses === true,
          ends: e.ends === true,
        };
      } catch (err) {
        warn(`warning: restore point index record ${displayPath(repo, path)} could not be read (${(err as Error).message}): segment ${segment} is read instead`);
        return undefined;
      }
    },
  };
}

/** The records of segments no longer archived (expire removed them): what to remove. */
export async function restorePointEntriesOf(repo: Repository, stanza: string, removed: readonly { name: string; sha256: string }[]): Promise<string[]> {
  if (removed.length === 0) return [];
  const dir = restorePointIndexPath(stanza);
  const doomed = new Set(removed.map((f) => entryName(f.name, f.sha256)));
  return (await repo.storage.list(dir, { detail: false })).filter((e) => e.type === 'file' && doomed.has(e.name)).map((e) => storageJoin(dir, e.name));
}

/**
 * What a segment about to be archived holds for the index (segments only: recovery reads no
 * .partial file by its segment's name); null when that is nothing a search needs.
 */
export function restorePointsToIndex(name: string, data: Buffer, segmentSize: number): SegmentRestorePoints | null {
  if (walFileKind(name) !== 'segment' || data.length !== segmentSize) return null;
  const seg = parseSegmentFileName(name, segmentSize);
  if (seg === null) return null;
  const s = segmentRestorePoints(seg.segNo * BigInt(segmentSize), data, crc32c);
  return worthKeeping(s) ? s : null;
}

/** Records what a segment holds in a stanza with the index, before the segment is stored. */
export async function indexRestorePoints(repo: Repository, stanza: StanzaInfo, segment: string, sha256: string, s: SegmentRestorePoints | null): Promise<void> {
  if (s !== null && hasRestorePointIndex(stanza)) await writeRestorePointEntry(repo, stanza.stanza, segment, sha256, s);
}
