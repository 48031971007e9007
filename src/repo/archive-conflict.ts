// A WAL file pushed under a name the archive holds with other content.
//
// One case is not a conflict: the segment in which a promotion ended a timeline,
// pushed under its full name by a server that followed the promotion (a
// cascading standby with archive_mode=always marks it ready when it switches
// timeline), while the archive holds that name from the old primary, which went
// on writing the old timeline after the failover (split brain): the two differ
// past the fork. Refused, it held the standby's archiver forever and filled its
// pg_wal (black-box run S). The push is answered as archived, and the old
// primary's copy stays (the old timeline as that server wrote it, which
// recovery along that timeline reads), when nothing of the pushed file is
// missing from the archive:
// - it is, byte for byte, the `.partial` the promoted server archived; or
// - an archived history file puts a fork of this timeline inside this segment,
//   the pushed WAL (as recovery reads it) ends at or before the fork, and up to
//   the fork it is, byte for byte, the archived copy. (Past the fork, a standby's
//   file holds what its recycled segment file held before: not WAL.)
//
// The other way round (the old primary pushing its copy, with WAL past the fork,
// after the standby's was stored) stays refused, with a hint that says what
// happened.

import { PgpitrError } from '../common/errors.js';
import { parseSegmentFileName, timelineHistoryFileName } from '../postgres/lsn.js';
import { parseTimelineHistory } from '../postgres/timeline-history.js';
import { WalRecordScanner } from '../postgres/wal-records.js';
import { crc32c } from '../storage/filter/crc32c.js';
import { storageJoin } from '../storage/storage-path.js';
import type { StorageEntry } from '../storage/storage.js';
import { archivePath, parseStoredName, storedHistoryTimeline, walFileKind } from './layout.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';

/** A stored copy of a WAL file (archive-store.ts). */
export interface StoredCopy {
  stored: string;
  sha256: string;
}

/** What the fork rule reads: the pushed file's content, and archived WAL files (fetchWalFile). */
export interface ConflictReading {
  stanza: string;
  segmentSize: number;
  content(): Promise<Buffer>;
  archived(name: string): Promise<Buffer | null>;
}

/**
 * For a push of `name` whose content (`digest`) differs from the archived copy `other`: the path of
 * the archived file that already holds all of it (the `.partial` with that content, or `other` when
 * the fork rule above holds), or a refusal. `entries`: the listing of `dir` the push made (the whole
 * directory where directories are real; else listed again here).
 */
export async function partialOrRefusal(repo: Repository, dir: string, name: string, digest: string, entries: StorageEntry[], other: StoredCopy, reading: ConflictReading): Promise<string> {
  if (walFileKind(name) !== 'segment') throw differentContent(repo, dir, name, digest, other);
  const partials: StoredCopy[] = [];
  const prefix = `${name}.partial-`;
  const listed = repo.storage.features.directories ? entries : await repo.storage.list(dir, { detail: false, prefix });
  for (const e of listed) {
    const parsed = e.name.startsWith(prefix) ? parseStoredName(e.name) : null;
    if (parsed && parsed.name === `${name}.partial`) partials.push({ stored: e.name, sha256: parsed.sha256 });
  }
  const same = partials.find((c) => c.sha256 === digest);
  if (same) return storageJoin(dir, same.stored);
  const seg = parseSegmentFileName(name, reading.segmentSize);
  const start = seg === null ? 0n : seg.segNo * BigInt(reading.segmentSize);
  // Where a timeline forked from this segment's, inside it, by the archived history files.
  const end = seg === null ? null : await timelineEnd(repo, reading.stanza, seg.timeline, reading.archived);
  const fork = end !== null && end > start && end < start + BigInt(reading.segmentSize) ? end : null;
  if (fork !== null && (await heldUpToFork(name, start, fork, reading))) return storageJoin(dir, other.stored);
  const evidence = [...(fork !== null ? ['an archived history file puts the fork there'] : []), ...(partials.length > 0 ? [`the archive holds ${name}.partial, from the promoted server`] : [])];
  throw differentContent(repo, dir, name, digest, other, evidence.length > 0 ? evidence.join('; ') : undefined);
}

/**
 * Where `timeline` ended, by the archive's history files (a promotion began another timeline
 * there): the earliest such switch point, or null. A history file that cannot be read says nothing.
 */
export async function timelineEnd(repo: Repository, stanza: string, timeline: number, archived: (name: string) => Promise<Buffer | null>): Promise<bigint | null> {
  let end: bigint | null = null;
  for (const e of await repo.storage.list(archivePath(stanza), { detail: false })) {
    const child = storedHistoryTimeline(e.name);
    if (child === null) continue;
    const history = timelineHistoryFileName(child);
    const text = await archived(history).catch(() => null);
    try {
      for (const x of text === null ? [] : parseTimelineHistory(text.toString(), history)) {
        if (x.timeline === timeline && (end === null || x.switchpoint < end)) end = x.switchpoint;
      }
    } catch {
      /* damaged: archive-get and restore name it */
    }
  }
  return end;
}

/** Whether the pushed segment (beginning at `start`) has its WAL end at or before `fork` and, up to it, is the archived copy's. */
async function heldUpToFork(name: string, start: bigint, fork: bigint, reading: ConflictReading): Promise<boolean> {
  const data = await reading.content();
  let lastEnd = 0;
  const scan = new WalRecordScanner({ crc32c, onRestorePoint: () => undefined, onRecord: (_lsn, end) => void (lastEnd = Math.max(lastEnd, end)) }).segment(start, data);
  if (scan !== 'end' || lastEnd > Number(fork)) return false;
  const archived = await reading.archived(name).catch(() => null);
  const upTo = Number(fork - start);
  return archived !== null && archived.length >= upTo && archived.subarray(0, upTo).equals(data.subarray(0, upTo));
}

/** `fork`: what says a promotion ended the timeline in this segment (the split-brain hint), if anything. */
export function differentContent(repo: Repository, dir: string, name: string, digest: string, other: StoredCopy, fork?: string): PgpitrError {
  return new PgpitrError('ERR_TARGET', `WAL file "${name}" is already archived with different content`, {
    detail: `archived SHA-256 ${other.sha256} (${displayPath(repo, storageJoin(dir, other.stored))}), this file ${digest}`,
    hint: name.endsWith('.history')
      ? 'two servers were promoted to this timeline (one chose its ID while it could not read the archive, where the other\'s history file was): the archived one is the other\'s; WAL of this server cannot go into this stanza on that timeline: archive it into another stanza and take a full backup there'
      : fork !== undefined
        ? `a promotion ended this timeline in this segment (${fork}), and this server went on writing the timeline after it (split brain): its WAL past the fork has no place in the archive. Stop it and make it a standby of the promoted server (pgpitr restore --delta --standby, or pg_rewind); its archiver stops failing once this file is gone from its pg_wal`
        : 'two clusters may be archiving into the same stanza, or the archive was restored from elsewhere; check archive_command on every server using this repository',
  });
}
