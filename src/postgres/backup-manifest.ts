// The backup_manifest the server writes for BASE_BACKUP (backup_manifest.c in
// src/backend/backup, src/backend/replication before 15), rebuilt byte for
// byte so pg_verifybackup accepts a backup whose files we read ourselves.
//
// Layout: a version line (plus "System-Identifier" from 17 on), one line per
// file, the WAL ranges, then a last line with the SHA-256 of every byte before
// it — pg_verifybackup hashes up to and including the second-to-last newline.

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { PgpitrError } from '../common/errors.js';
import { majorOf } from './versions.js';
import type { Lsn } from './lsn.js';
import type { ManifestChecksumAlgorithm } from './manifest-checksum-algorithm.js';
import { manifestChecksumLength } from './manifest-checksum-algorithm.js';
import type { TimelineSwitch } from './timeline-history.js';

export type ManifestVersion = 1 | 2;

export interface BackupManifestOptions {
  /** The server's server_version_num: decides the manifest version (2 from 17 on). */
  serverVersion: number;
  /** pg_control's system identifier; required for version 2, whose verifier compares it with global/pg_control. */
  systemIdentifier?: bigint | string;
  /** Write every path as Encoded-Path, as pg_basebackup --manifest-force-encode asks. */
  forceEncode?: boolean;
}

export interface ManifestFileEntry {
  /** Relative to the data directory, '/'-separated; tablespace files as pg_tblspc/<oid>/... Bytes when the name is not known to be UTF-8. */
  path: string | Uint8Array;
  size: number | bigint;
  /** Modification time in Unix seconds (fractions are dropped, as the server's pg_time_t does). */
  mtime: number;
  checksumAlgorithm: ManifestChecksumAlgorithm;
  /** As ManifestChecksum.digestHex() gives it; ignored for NONE. */
  checksumHex?: string;
}

export interface WalRange {
  timeline: number;
  start: Lsn;
  end: Lsn;
}

/** Version 2 (with the system identifier) is what PostgreSQL 17 and later write. */
export function manifestVersionFor(serverVersion: number): ManifestVersion {
  if (!Number.isInteger(serverVersion) || serverVersion < 130000) {
    throw new PgpitrError('ERR_INTERNAL', `backup manifest: ${serverVersion} is not the server_version_num of a server that writes manifests (13 or later)`);
  }
  return majorOf(serverVersion) >= 17 ? 2 : 1;
}

export class BackupManifestBuilder {
  readonly version: ManifestVersion;
  private readonly forceEncode: boolean;
  /** The text so far: whole chunks of about CHUNK bytes, then what is not a chunk yet. */
  private parts: Buffer[] = [];
  private pending = '';
  private readonly hash: Hash = createHash('sha256');
  private files = 0;
  private walRanges = 0;
  private state: 'files' | 'wal' | 'finished' = 'files';

  constructor(opts: BackupManifestOptions) {
    this.version = manifestVersionFor(opts.serverVersion);
    this.forceEncode = opts.forceEncode ?? false;
    if (this.version === 1) {
      this.append('{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [');
    } else {
      if (opts.systemIdentifier === undefined) {
        throw new PgpitrError('ERR_INTERNAL', 'a version 2 backup manifest needs the system identifier');
      }
      this.append(`{ "PostgreSQL-Backup-Manifest-Version": 2,\n"System-Identifier": ${formatUint64(opts.systemIdentifier)},\n"Files": [`);
    }
  }

  addFile(entry: ManifestFileEntry): void {
    if (this.state !== 'files') throw new PgpitrError('ERR_INTERNAL', 'backup manifest: files must be added before the WAL ranges');
    // The server ends the previous line only when the next one comes, so the last entry has no comma.
    let line = this.files++ === 0 ? '\n' : ',\n';
    const utf8 = this.forceEncode ? null : utf8PathOrNull(entry.path);
    line += utf8 === null ? `{ "Encoded-Path": "${Buffer.from(pathBytes(entry.path)).toString('hex')}", ` : `{ "Path": ${escapeJsonString(utf8)}, `;
    line += `"Size": ${formatSize(entry.size)}, "Last-Modified": "${formatLastModified(entry.mtime)}"`;
    if (entry.checksumAlgorithm !== 'NONE') {
      line += `, "Checksum-Algorithm": "${entry.checksumAlgorithm}", "Checksum": "${checkedHex(entry)}"`;
    }
    line += ' }';
    this.append(line);
  }

  /** Ranges in the server's order: newest timeline first (see manifestWalRanges). */
  addWalRange(timeline: number, start: Lsn, end: Lsn): void {
    if (this.state === 'finished') throw new PgpitrError('ERR_INTERNAL', 'backup manifest already finished');
    if (this.state === 'files') {
      this.append('\n],\n"WAL-Ranges": [\n');
      this.state = 'wal';
    }
    const sep = this.walRanges++ === 0 ? '' : ',\n';
    this.append(`${sep}{ "Timeline": ${timeline}, "Start-LSN": "${formatManifestLsn(start)}", "End-LSN": "${formatManifestLsn(end)}" }`);
  }

  /** The whole manifest, ending in its own checksum and a newline. */
  finish(): Buffer {
    return Buffer.concat(this.finishChunks());
  }

  /**
   * The whole manifest as finish() gives it, in chunks of about 64 KiB that the builder no longer
   * holds: at 100,000 files the text is 14 MB, and one Buffer per line (or a copy made whole) cost
   * as much again in a backup's peak memory.
   */
  finishChunks(): Buffer[] {
    if (this.state === 'finished') throw new PgpitrError('ERR_INTERNAL', 'backup manifest already finished');
    if (this.walRanges === 0) throw new PgpitrError('ERR_INTERNAL', 'backup manifest has no WAL range');
    this.append('\n],\n');
    this.state = 'finished';
    this.flush();
    const digest = this.hash.digest('hex');
    const parts = this.parts;
    this.parts = [];
    parts.push(Buffer.from(`"Manifest-Checksum": "${digest}"}\n`, 'latin1'));
    return parts;
  }

  private append(text: string): void {
    this.pending += text;
    if (this.pending.length >= CHUNK) this.flush();
  }

  private flush(): void {
    if (this.pending === '') return;
    const bytes = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    this.hash.update(bytes);
    this.parts.push(bytes);
  }
}

/** About how many characters of the text the builder gathers into one Buffer. */
const CHUNK = 64 * 1024;

/**
 * The WAL ranges the server lists (AddWALInfoToBackupManifest): walking the
 * end timeline's history from newest to oldest, every timeline still alive at
 * the backup's start, each from where it began (or the start LSN on the start
 * timeline) to where its child began (or the end LSN). `history` is the end
 * timeline's history file as parsed by parseTimelineHistory (empty on timeline 1),
 * whose switchpoints never go backwards: for a history written with one going
 * backwards (a recovery that stopped before the timeline it followed began), the
 * server's manifest takes the file's own values, and the ranges would differ.
 */
export function manifestWalRanges(history: readonly TimelineSwitch[], startTimeline: number, start: Lsn, endTimeline: number, end: Lsn): WalRange[] {
  // History entries as the server holds them: newest first, each with where it began and ended (null: not ended).
  const entries: { timeline: number; begin: Lsn; end: Lsn | null }[] = [{ timeline: endTimeline, begin: history.at(-1)?.switchpoint ?? 0n, end: null }];
  for (let i = history.length - 1; i >= 0; i--) {
    entries.push({ timeline: history[i]!.timeline, begin: i === 0 ? 0n : history[i - 1]!.switchpoint, end: history[i]!.switchpoint });
  }
  const ranges: WalRange[] = [];
  let rangeEnd = end;
  for (const e of entries) {
    if (e.end !== null && e.end < start) continue; // ended before the backup began
    if (ranges.length === 0 && e.timeline !== endTimeline) {
      throw new PgpitrError('ERR_PROTOCOL', `expected end timeline ${endTimeline} but found timeline ${e.timeline}`);
    }
    let rangeStart: Lsn;
    if (e.timeline === startTimeline) rangeStart = start;
    else if (e.begin === 0n) throw new PgpitrError('ERR_PROTOCOL', `expected start timeline ${startTimeline} but found timeline ${e.timeline}`);
    else rangeStart = e.begin;
    ranges.push({ timeline: e.timeline, start: rangeStart, end: rangeEnd });
    if (e.timeline === startTimeline) return ranges;
    rangeEnd = e.begin;
  }
  throw new PgpitrError('ERR_PROTOCOL', `start timeline ${startTimeline} not found in history of timeline ${endTimeline}`);
}

/** A JSON string literal as the server's escape_json writes it: only the JSON-mandated escapes, \u00xx in lower case, everything else raw. */
export function escapeJsonString(text: string): string {
  let out = '"';
  for (const ch of text) {
    switch (ch) {
      case '\b':
        out += '\\b';
        break;
      case '\f':
        out += '\\f';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      case '"':
        out += '\\"';
        break;
      case '\\':
        out += '\\\\';
        break;
      default: {
        const code = ch.codePointAt(0)!;
        out += code < 0x20 ? `\\u${code.toString(16).padStart(4, '0')}` : ch;
      }
    }
  }
  return out + '"';
}

/** "YYYY-MM-DD HH:MM:SS GMT", the server's pg_strftime("%Y-%m-%d %H:%M:%S %Z") of pg_gmtime. */
export function formatLastModified(mtimeSeconds: number): string {
  const d = new Date(Math.floor(mtimeSeconds) * 1000);
  if (Number.isNaN(d.getTime())) throw new PgpitrError('ERR_INTERNAL', `invalid modification time ${mtimeSeconds}`);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const year = d.getUTCFullYear();
  return `${String(year).padStart(4, '0')}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} GMT`;
}

/** The server prints WAL range LSNs with "%X/%X": upper-case hex, no padding. */
export function formatManifestLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The path as text if its bytes are valid UTF-8 (the server's pg_verify_mbstr:
 * no overlong forms, surrogates or code points past U+10FFFF, no NUL), else
 * null. A string holding a lone surrogate came from bytes that were not UTF-8.
 */
function utf8PathOrNull(path: string | Uint8Array): string | null {
  if (typeof path === 'string') {
    return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\0/.test(path) ? null : path;
  }
  try {
    const text = fatalUtf8.decode(path);
    return text.includes('\0') ? null : text;
  } catch {
    return null;
  }
}

function pathBytes(path: string | Uint8Array): Uint8Array {
  return typeof path === 'string' ? Buffer.from(path, 'utf8') : path;
}

function checkedHex(entry: ManifestFileEntry): string {
  const hex = entry.checksumHex ?? '';
  if (hex.length !== 2 * manifestChecksumLength(entry.checksumAlgorithm) || !/^[0-9a-f]*$/.test(hex)) {
    throw new PgpitrError('ERR_INTERNAL', `backup manifest: ${entry.checksumAlgorithm} checksum "${hex}" is not valid for ${String(entry.path)}`);
  }
  return hex;
}

function formatSize(size: number | bigint): string {
  if (typeof size === 'bigint' ? size < 0n : !Number.isSafeInteger(size) || size < 0) {
    throw new PgpitrError('ERR_INTERNAL', `backup manifest: invalid file size ${size}`);
  }
  return String(size);
}

function formatUint64(value: bigint | string): string {
  const n = typeof value === 'bigint' ? value : /^\d+$/.test(value) ? BigInt(value) : -1n;
  if (n < 0n || n > 0xffffffffffffffffn) throw new PgpitrError('ERR_INTERNAL', `invalid system identifier ${String(value)}`);
  return n.toString();
}
