// The stanza's WAL archive as restore and backup read it: the names it holds,
// and a history file's content (fetched and verified by archive-store).

import { fetchWalFile, listArchive } from './archive-store.js';
import { ArchivedFileReader } from './archived-file-reader.js';
import type { ArchivedFile } from './archive-store.js';
import type { Repository } from './repository.js';
import { parseStoredName, walFileDirPath } from './layout.js';
import { openRestorePointIndex } from './restore-point-index.js';
import type { SegmentRestorePoints } from '../postgres/segment-restore-points.js';

export interface WalArchiveListing {
  /** The names of the archived WAL files, as listed when the view was opened. */
  names(): string[];
  /** Of names(), those stored in the archive (absent: all). */
  storedNames?(): string[];
  readHistory(name: string): Promise<Buffer | null>;
  /** A segment's content, verified: valid until the next call (segments read in turn reuse buffers). `upcoming`: those likely read next, in order. */
  readSegment(name: string, upcoming?: readonly string[]): Promise<Buffer | null>;
  doneReadingSegments(): Promise<void>;
  /** When a file was stored (the repository's clock), or undefined when not listed. */
  storedMs(name: string): number | undefined;
  /** What the restore point index says a segment holds; undefined when it cannot say (read the segment). */
  restorePoints(name: string): Promise<SegmentRestorePoints | undefined>;
}

/**
 * The archive as it is now (restore reads it once, before it plans). `warn`: what of the restore
 * point index could not be read.
 */
export async function openWalArchiveView(repo: Repository, stanza: string, warn: (line: string) => void = () => {}): Promise<WalArchiveListing> {
  const files = await listArchive(repo, stanza);
  const names = files.map((f) => f.name);
  const stored = new Map(files.map((f) => [f.name, f.mtimeMs]));
  // Segments of this listing are read without listing their directory again (restore reads many to
  // find a target); a name stored twice is left to fetchWalFile, which says which copies differ.
  const copies = new Map<string, ArchivedFile[]>();
  for (const f of files) copies.set(f.name, [...(copies.get(f.name) ?? []), f]);
  const only = (name: string | undefined): ArchivedFile | undefined => {
    const c = name === undefined ? undefined : copies.get(name);
    return c?.length === 1 ? c[0] : undefined;
  };
  const reader = new ArchivedFileReader(repo, stanza);
  const index = openRestorePointIndex(repo, stanza, warn);
  return {
    restorePoints: async (name) => {
      const f = only(name);
      return f === undefined ? undefined : index.entry(name, f.sha256);
    },
    names: () => names,
    readHistory: (name) => fetchWalFile(repo, stanza, name),
    readSegment: (name, upcoming = []) => {
      const f = only(name);
      return f ? reader.read(f, upcoming.map(only).filter((x): x is ArchivedFile => x !== undefined)) : fetchWalFile(repo, stanza, name);
    },
    doneReadingSegments: () => reader.release(),
    storedMs: (name) => stored.get(name),
  };
}

/** The names in the archive now (what a backup waiting for its WAL polls). */
export async function archivedNames(repo: Repository, stanza: string): Promise<string[]> {
  return (await listArchive(repo, stanza)).map((f) => f.name);
}

/**
 * Which of `names` (WAL file names) the archive holds now: one listing per directory they fall
 * in, not of the whole archive (a backup waiting for its WAL polls this; on object storage a
 * whole listing costs a request per thousand files).
 */
export async function archivedAmong(repo: Repository, stanza: string, names: readonly string[]): Promise<Set<string>> {
  const wanted = new Set(names);
  const have = new Set<string>();
  for (const dir of new Set(names.map((n) => walFileDirPath(stanza, n)))) {
    for (const e of await repo.storage.list(dir, { detail: false })) {
      const parsed = parseStoredName(e.name);
      if (parsed && wanted.has(parsed.name)) have.add(parsed.name);
    }
  }
  return have;
}
