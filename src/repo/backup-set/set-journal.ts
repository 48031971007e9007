// A backup set's copy journal: which files a running -j backup has completely
// stored, so that `pgpitr backup --resume` can take over a set whose run was
// killed or failed, and keep them. Storage has no append, so the journal is a
// numbered series of small objects (journal/00000001.json, ...), each a batch
// of entries written — atomically and synced, as every object — only after the
// objects its entries name are durable. Whatever moment a run is killed at, the
// batches that exist name only complete, durable objects; the last entries not
// yet in a batch are lost (their objects are then swept by the resumed run).
//
// A batch carries the SHA-256 of its entries: one that does not parse or does
// not match (torn by a storage that is not atomic, or damaged) is ignored as a
// whole. The last entry for a path wins (a resumed run journals its new copies
// after the interrupted run's). Removed once the backup is complete.

import { createHash } from 'node:crypto';
import type { Storage } from '../../storage/storage.js';
import { readAll } from '../../storage/storage.js';
import { storageJoin } from '../../storage/storage-path.js';
import { relativePathProblem } from '../../common/relative-path.js';
import type { FrameIndex, StoredAt } from './manifest.js';
import { validIndex } from './manifest.js';

export const JOURNAL_DIR = 'journal';
const FORMAT = 'pgpitr-set-journal';
/** 2: entries carry XXH3-128 (content-digest.ts); a version 1 batch (SHA-256) is ignored: its files are copied again. */
const FORMAT_VERSION = 2;

export interface SetJournalEntry {
  /** The file's path in the cluster (as in the manifest). */
  path: string;
  /** Its size when it was copied. */
  size: number;
  /** Its modification time (µs) as the listing saw it. */
  mtime_us: number;
  /** When its copy began (µs since the epoch). */
  started_us: number;
  /** XXH3-128 of its original bytes (content-digest.ts). */
  xxh128: string;
  /** CRC-32C of its original bytes (manifest.ts ManifestFile.crc32c), when recorded. */
  crc32c?: string;
  /** Where its stored bytes are. */
  stored: StoredAt;
  /** Where they may be cut (manifest.ts ManifestFile.index), when recorded. */
  index?: FrameIndex;
  /** How many bytes are stored (after compression). */
  stored_bytes: number;
}

interface Batch {
  format: typeof FORMAT;
  format_version: number;
  batch: number;
  entries: SetJournalEntry[];
  /** SHA-256 of JSON.stringify(entries). */
  sha256: string;
}

export function batchName(n: number): string {
  return `${JOURNAL_DIR}/${String(n).padStart(8, '0')}.json`;
}

export function serializeBatch(n: number, entries: SetJournalEntry[]): Buffer {
  const b: Batch = { format: FORMAT, format_version: FORMAT_VERSION, batch: n, entries, sha256: digest(entries) };
  return Buffer.from(JSON.stringify(b) + '\n');
}

/** A batch's entries, or null when it is torn, damaged or of another format (then it vouches for nothing). */
export function parseBatch(text: Buffer | string): SetJournalEntry[] | null {
  let b: Batch;
  try {
    b = JSON.parse(text.toString()) as Batch;
  } catch {
    return null;
  }
  if (b?.format !== FORMAT || b.format_version !== FORMAT_VERSION || !Array.isArray(b.entries) || b.sha256 !== digest(b.entries)) return null;
  return b.entries.every(validEntry) ? b.entries : null;
}

function digest(entries: SetJournalEntry[]): string {
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}

function validEntry(e: SetJournalEntry): boolean {
  const n = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (typeof e?.path !== 'string' || relativePathProblem(e.path) !== null) return false;
  if (!n(e.size) || !n(e.mtime_us) || !n(e.started_us) || !n(e.stored_bytes) || !/^[0-9a-f]{32}$/.test(e.xxh128 ?? '')) return false;
  if (e.crc32c !== undefined && !/^[0-9a-f]{8}$/.test(e.crc32c)) return false;
  if (e.index !== undefined && !validIndex(e.index, e.size)) return false;
  const s = e.stored as Partial<{ object: string; bundle: number; offset: number; length: number }> | undefined;
  if (typeof s?.object === 'string') return relativePathProblem(s.object) === null && s.object.startsWith('data/');
  return n(s?.bundle) && n(s?.offset) && n(s?.length);
}

export interface JournalRead {
  /** The last entry of each path. */
  entries: Map<string, SetJournalEntry>;
  /** The highest batch number present (0: none); a new run numbers its batches after it. */
  lastBatch: number;
  /** Batches that were torn, damaged or of another format, ignored. */
  ignored: number;
}

/** Reads every batch of a set's journal, in number order. */
export async function readSetJournal(storage: Storage, dir: string): Promise<JournalRead> {
  const names = (await storage.list(storageJoin(dir, JOURNAL_DIR), { detail: false }))
    .map((e) => /^(\d{8})\.json$/.exec(e.name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const out: JournalRead = { entries: new Map(), lastBatch: names.length > 0 ? names[names.length - 1]! : 0, ignored: 0 };
  for (const n of names) {
    const text = await readAll(storage, storageJoin(dir, batchName(n)));
    const entries = text === null ? null : parseBatch(text);
    if (entries === null) {
      out.ignored++;
      continue;
    }
    for (const e of entries) out.entries.set(e.path, e);
  }
  return out;
}

/**
 * Gathers entries whose objects are durable and writes them as batches: once
 * `maxEntries` are waiting, or `maxDelayMs` after the first of them came.
 * A failed batch write fails the backup (flush() throws it).
 */
export class SetJournalWriter {
  private pending: SetJournalEntry[] = [];
  private next: number;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Entries written in batches so far by this run. */
  written = 0;

  constructor(
    private readonly storage: Storage,
    private readonly dir: string,
    afterBatch: number,
    private readonly opts: { maxEntries?: number; maxDelayMs?: number } = {},
  ) {
    this.next = afterBatch + 1;
  }

  /** An entry whose object (or bundle) is durable now. */
  add(e: SetJournalEntry): void {
    if (this.closed) return; // its object is not kept by a resume then: stored again
    this.pending.push(e);
    if (this.pending.length >= (this.opts.maxEntries ?? 1000)) void this.writeBatch();
    else this.timer ??= setTimeout(() => void this.writeBatch(), this.opts.maxDelayMs ?? 1000);
  }

  /** Writes what is waiting; resolves once every batch so far is durable. */
  async flush(): Promise<void> {
    await this.writeBatch();
    if (this.failure !== null) throw this.failure;
  }

  /** Stops the timer; what is waiting is not written (flush() first to keep it). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private writeBatch(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length > 0) {
      const entries = this.pending;
      this.pending = [];
      const n = this.next++;
      this.chain = this.chain.then(async () => {
        if (this.failure !== null) return;
        try {
          await this.storage.write(storageJoin(this.dir, batchName(n)), serializeBatch(n, entries));
          this.written += entries.length;
        } catch (e) {
          this.failure = e;
        }
      });
    }
    return this.chain;
  }
}
