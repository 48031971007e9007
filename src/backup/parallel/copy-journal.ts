// What a parallel backup into a directory has copied so far, so that a rerun
// with --resume can keep it: one JSON line per file, appended once the file is
// written (not synced: a resumed run checks each kept file's bytes against the
// checksum recorded here before it keeps it). Removed when the backup completes.

import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { storageError } from '../../common/errors.js';
import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import type { ListedFile } from './listing.js';

export const JOURNAL_NAME = 'pgpitr_backup.files';

export interface JournalEntry {
  /** The backup_manifest path. */
  path: string;
  size: number;
  /** The source's modification time (µs) when it was listed. */
  mtime_us: number;
  /** When its copy began (µs since the epoch). */
  started_us: number;
  algorithm: ManifestChecksumAlgorithm;
  /** Of the bytes from offset, length long: the whole file, or one range of a large file copied in ranges. */
  checksum: string;
  offset?: number;
  length?: number;
  /**
   * False when the copy's pages were not verified (--no-verify-checksums, or a cluster without
   * checksums): a resumed run that verifies copies such a file again rather than keep it unchecked.
   * Absent in journals of older pgpitr: taken as verified.
   */
  pages_verified?: boolean;
}

/** The journal's key: a file, or one range of it. */
export function journalKey(path: string, offset = 0): string {
  return offset === 0 ? path : `${path}@${offset}`;
}

export class CopyJournal {
  private readonly path: string;
  /** Open for appending while the backup runs: one write per file, not an open, a write and a close. */
  private fd: number | null;

  /**
   * Starts a new journal in dir (an earlier one is replaced: read it first), beginning with
   * `carried`, the entries of the interrupted run a resumed one starts from: a resume that fails
   * in turn, before or while it copies, then leaves them for the next (each is judged again then,
   * and a kept copy's bytes are checked against its checksum before it stands).
   */
  constructor(dir: string, mode: number, carried: Iterable<JournalEntry> = []) {
    this.path = join(dir, JOURNAL_NAME);
    const tmp = `${this.path}.tmp`;
    try {
      // Whole before it replaces the old one: a kill while it is written loses nothing.
      const lines = [...carried].map((e) => JSON.stringify(e) + '\n').join('');
      writeFileSync(tmp, lines, { mode });
      renameSync(tmp, this.path);
      this.fd = openSync(this.path, 'a', mode);
    } catch (e) {
      throw storageError('create', this.path, e);
    }
  }

  record(e: JournalEntry): void {
    if (this.fd === null) return;
    const line = Buffer.from(JSON.stringify(e) + '\n');
    try {
      for (let off = 0; off < line.length; ) off += writeSync(this.fd, line, off);
    } catch (err) {
      throw storageError('append to', this.path, err);
    }
  }

  /** The backup is complete: nothing is left to resume. */
  remove(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
    rmSync(this.path, { force: true });
  }
}

/** The entries an interrupted run left in dir (the last line for a path wins; a torn last line is ignored). */
export function readJournal(dir: string): Map<string, JournalEntry> {
  const out = new Map<string, JournalEntry>();
  let text: string;
  try {
    text = readFileSync(join(dir, JOURNAL_NAME), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw storageError('read', join(dir, JOURNAL_NAME), e);
  }
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as JournalEntry;
      if (typeof e.path === 'string' && typeof e.checksum === 'string') out.set(journalKey(e.path, e.offset), e);
    } catch {
      // the line the kill cut short
    }
  }
  return out;
}

/**
 * Whether an earlier copy of a file may stand for a copy taken now: the source
 * has the size and modification time it had then, and had not been modified in
 * the second before that copy began (a write in the same clock tick as the copy
 * would leave the time unchanged). Changes after this backup's start are
 * replayed from its WAL as for any file; changes between the two runs would
 * not be, and they show in the time. The same rule judges a repository
 * backup's journaled copies (repo/backup-set/set-journal.ts).
 */
export function reusable(e: Pick<JournalEntry, 'size' | 'mtime_us' | 'started_us'>, f: Pick<ListedFile, 'size' | 'mtimeUs'>): boolean {
  return e.size === f.size && e.mtime_us === f.mtimeUs && e.mtime_us < e.started_us - 1_000_000;
}
