// A backup set's manifest (manifest.json in the set's directory): every file of
// the backed-up cluster with its size, mode, modification time, the digest of
// its original content (content-digest.ts) and where its stored bytes are (an object of its own, or
// a range of a bundle of small files), the directories and tablespace links,
// and how the stored bytes were compressed. It is written after every stored
// object is durable; a set without it is incomplete.
//
// Paths are relative to the data directory, as in PostgreSQL's backup_manifest;
// a tablespace's files are under pg_tblspc/<oid>/. Every path read back is
// checked (checkClusterPath) before it is used: a damaged or hostile manifest
// must not make restore write outside its target.

import { createHash } from 'node:crypto';
import { PgpitrError } from '../../common/errors.js';
import { relativePathProblem } from '../../common/relative-path.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import { digestOf } from './content-digest.js';
import { BACKUP_ID } from './record.js';
import { SUM_PREFIX } from './manifest-text.js';
import { parseObjectByElements } from './json-by-elements.js';

/** The manifest's name in the set's directory. */
export const MANIFEST_NAME = 'manifest.json';

export type StoredAt = { object: string } | { bundle: number; offset: number; length: number };

export interface ManifestFile {
  path: string;
  size: number;
  mode: number;
  /** Seconds since the epoch, as tar carries it. */
  mtime: number;
  /** XXH3-128 of the original content (32 hex digits): format 2 on (content-digest.ts). */
  xxh128?: string;
  /** SHA-256 of the original content: format 1, which had no XXH3-128. */
  sha256?: string;
  /**
   * CRC-32C of the file's bytes (8 hex digits), recorded since pgpitr 0.1's second manifest
   * revision: restore checks each file it writes against it (its pieces' combine), while
   * verify, delta restore and resume compare the digest. Absent in older sets: the digest then.
   */
  crc32c?: string;
  stored: StoredAt;
  /**
   * A diff or incr backup's file that did not change since its prior backup: the id of the backup
   * whose set holds `stored` (never this backup's own id; format 3 on). Absent: this set holds it.
   */
  reference?: string;
  /**
   * Where a large file's stored bytes may be cut (a stored object made of independent frames, as a
   * parallel backup's readers compress it): stored[i] is the offset of the frame holding the
   * original bytes from (i + 1) * every on. Restore then decodes the pieces on several threads.
   */
  index?: FrameIndex;
}

export interface FrameIndex {
  every: number;
  stored: number[];
}

export interface ManifestDirectory {
  path: string;
  mode: number;
}

export interface ManifestTablespace {
  oid: number;
  /** Where the tablespace was on the backed-up server. */
  location: string;
}

export interface BackupSetManifest {
  format: 'pgpitr-backup-manifest';
  /**
   * 4: the text begins with its own SHA-256 (manifest-text.ts); 3: files may name another backup's
   * set (reference); 2: files carry XXH3-128; 1: SHA-256.
   */
  format_version: 1 | 2 | 3 | 4;
  backup_id: string;
  compression: CompressionAlgorithm | 'none';
  directories: ManifestDirectory[];
  files: ManifestFile[];
  tablespaces: ManifestTablespace[];
  /** The server's own backup_manifest, stored as an object of the set (null when the server made none). */
  server_manifest: string | null;
}

/** The one rule for a path inside a cluster: relative, no "..", ".", or empty component, no NUL. */
export function checkClusterPath(path: string, where: string): string {
  const problem = relativePathProblem(path);
  if (problem !== null) {
    throw new PgpitrError('ERR_UNSAFE_PATH', `unsafe path "${path}" in ${where}: ${problem}`, {
      hint: 'the backup set is damaged or was tampered with; restore another backup and run pgpitr verify',
    });
  }
  return path;
}

const SUM_PREFIX_BYTES = Buffer.from(SUM_PREFIX);

/**
 * The text's own checksum checked (format 4); a text of an earlier format has none. Hashed from
 * the bytes as read: the body made a string of its own (twice) cost 36 MB at 100,000 files.
 */
function checkSum(bytes: Buffer, where: string): void {
  const p = SUM_PREFIX_BYTES.length;
  if (!bytes.subarray(0, p).equals(SUM_PREFIX_BYTES)) return;
  const sum = bytes.toString('latin1', p, p + 64);
  const end = bytes.length > p + 66 && bytes[bytes.length - 1] === 0x0a ? bytes.length - 1 : bytes.length;
  const actual = createHash('sha256').update('{').update(bytes.subarray(p + 66, end)).digest('hex');
  if (!/^[0-9a-f]{64}$/.test(sum) || bytes.toString('latin1', p + 64, p + 66) !== '",' || actual !== sum) {
    throw damaged(where, 'its checksum does not match its content (a changed byte)');
  }
}

export function parseManifest(text: Buffer | string, where: string): BackupSetManifest {
  let m: BackupSetManifest & { manifest_sha256?: string };
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  checkSum(bytes, where);
  try {
    m = parseObjectByElements(bytes) as BackupSetManifest;
  } catch (e) {
    throw damaged(where, `not JSON: ${(e as Error).message}`);
  }
  if (m?.format !== 'pgpitr-backup-manifest') throw damaged(where, 'not a pgpitr backup manifest');
  if (m.format_version !== 1 && m.format_version !== 2 && m.format_version !== 3 && m.format_version !== 4) {
    throw new PgpitrError('ERR_UNSUPPORTED', `${where} has manifest format version ${String(m.format_version)}; this pgpitr reads versions 1 to 4`, {
      hint: 'use the pgpitr version that wrote the backup, or a newer one',
    });
  }
  if (m.format_version === 4 && m.manifest_sha256 === undefined) throw damaged(where, 'it has no checksum of its own');
  delete m.manifest_sha256;
  if (!Array.isArray(m.files) || !Array.isArray(m.directories) || !Array.isArray(m.tablespaces)) throw damaged(where, 'files, directories or tablespaces missing');
  // One string per backup named (at 100,000 files of an incr, 3 MB of copies otherwise).
  const ids = new Map<string, string>();
  for (const f of m.files) {
    checkClusterPath(f.path, where);
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw damaged(where, `entry "${f.path}" has no valid size`);
    // Each format records its own digest: a version 1 entry with only XXH3-128 is not one this pgpitr wrote.
    const digest = digestOf(f);
    if (digest === null || (m.format_version === 1 && digest.algorithm !== 'sha256')) throw damaged(where, `entry "${f.path}" has no valid ${m.format_version === 1 ? 'SHA-256' : 'digest'}`);
    if (f.crc32c !== undefined && !/^[0-9a-f]{8}$/.test(f.crc32c)) throw damaged(where, `entry "${f.path}" has no valid CRC-32C`);
    if (f.index !== undefined && !validIndex(f.index, f.size)) throw damaged(where, `entry "${f.path}" has no valid frame index`);
    if (f.reference !== undefined && (m.format_version < 3 || typeof f.reference !== 'string' || !BACKUP_ID.test(f.reference) || f.reference === m.backup_id)) {
      throw damaged(where, `entry "${f.path}" has no valid reference`);
    }
    if (f.reference !== undefined) {
      const id = ids.get(f.reference);
      if (id === undefined) ids.set(f.reference, f.reference);
      else f.reference = id;
    }
    if ('object' in f.stored) checkClusterPath(f.stored.object, where);
    else if (!Number.isSafeInteger(f.stored.bundle) || !Number.isSafeInteger(f.stored.offset) || !Number.isSafeInteger(f.stored.length)) throw damaged(where, `entry "${f.path}" has no valid bundle range`);
  }
  for (const d of m.directories) checkClusterPath(d.path, where);
  for (const t of m.tablespaces) {
    if (!Number.isSafeInteger(t.oid) || t.oid <= 0) throw damaged(where, `tablespace oid ${String(t.oid)} is not valid`);
  }
  return m;
}

/** The backups whose sets hold files of this manifest besides its own, sorted. */
export function manifestReferences(m: BackupSetManifest): string[] {
  const ids = new Set<string>();
  for (const f of m.files) if (f.reference !== undefined) ids.add(f.reference);
  return [...ids].sort();
}

function damaged(where: string, why: string): PgpitrError {
  return new PgpitrError('ERR_STORAGE', `${where} is damaged: ${why}`, {
    hint: 'restore another backup; pgpitr verify reports what else is damaged',
  });
}

/** A frame index that can be followed: positive step, one ascending offset per step inside the file. */
export function validIndex(x: FrameIndex, size: number): boolean {
  if (!Number.isSafeInteger(x?.every) || x.every <= 0 || !Array.isArray(x.stored)) return false;
  if (x.stored.length !== Math.max(0, Math.ceil(size / x.every) - 1)) return false;
  let last = 0;
  for (const o of x.stored) {
    if (!Number.isSafeInteger(o) || o <= last) return false;
    last = o;
  }
  return true;
}
