// The WAL archive of a stanza: push (check, checksum, compress, atomic
// rename), get (find, decompress, verify) and list. A stored file is visible
// only once complete: it is written under a temporary name, synced, renamed
// and its directory synced, so a push killed midway leaves nothing that get
// or list would take for a segment.

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, openSync, writeSync, closeSync, renameSync, statSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { compressBuffer, decompressBuffer } from '../storage/compress/buffer.js';
import { compressionExtension } from '../storage/compress/levels.js';
import { poolFor } from '../storage/buffer-pool.js';
import type { CompressionAlgorithm } from '../storage/compress/common.js';
import { parseWalLongPageHeader, segmentNameMismatch } from '../postgres/wal-page-header.js';
import { archiveDir, walFileKind, walFileSubdir, storedName, parseStoredName } from './layout.js';
import { existingArchiveDir } from './stanza.js';
import { removeStaleTemps, staleTemps, tempPathFor } from './archive-temp.js';
import type { StanzaInfo } from './stanza.js';
import { fsyncPath } from '../storage/durable.js';

export interface PushOptions {
  compression: CompressionAlgorithm | 'none';
  level?: number | undefined;
}

export type PushOutcome = { status: 'stored'; path: string } | { status: 'already-archived'; path: string };

const ALGORITHM_OF: Record<string, CompressionAlgorithm> = { '.gz': 'gzip', '.lz4': 'lz4', '.zst': 'zstd' };

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const HASH_SLICE = 1024 * 1024;

/**
 * SHA-256 in 1 MiB slices with a turn of the event loop between them, so that
 * hashing a 16 MiB segment never holds up, for more than a slice, what shares
 * the process (receive-wal's stream, the pusher's other files).
 */
export async function sha256Sliced(data: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for (let off = 0; off < data.length; off += HASH_SLICE) {
    if (off > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    hash.update(data.subarray(off, off + HASH_SLICE));
  }
  return hash.digest('hex');
}

export async function pushWalFile(repo: string, stanza: StanzaInfo, source: string, opts: PushOptions): Promise<PushOutcome> {
  const name = basename(source);
  const kind = walFileKind(name);
  if (kind === null) {
    throw new PgpitrError('ERR_USAGE', `"${name}" is not a WAL segment, .partial, .history or .backup file`, {
      hint: 'archive_command must pass %p, the path of the file PostgreSQL wants archived',
    });
  }
  const data = await readWalFile(source, stanza.wal_segment_size);
  let compressing: Promise<Buffer> | null = null;
  try {
    if (kind === 'segment' || kind === 'partial') checkSegment(name, data, stanza);
    // Compression (on the thread pool for zstd and gzip) runs while the main thread hashes.
    compressing = opts.compression === 'none' ? Promise.resolve(data) : compressBuffer(opts.compression, data, opts.level);
    compressing.catch(() => {}); // awaited below, unless the file is already archived
    const digest = await sha256Sliced(data);
    const dir = join(archiveDir(repo, stanza.stanza), walFileSubdir(name));
    const existing = findStored(dir, name);
    if (existing) {
      if (existing.sha256 === digest) return { status: 'already-archived', path: join(dir, existing.stored) };
      throw new PgpitrError('ERR_TARGET', `WAL file "${name}" is already archived with different content`, {
        detail: `archived SHA-256 ${existing.sha256}, this file ${digest}`,
        hint: 'two clusters may be archiving into the same stanza, or the archive was restored from elsewhere; check archive_command on every server using this repository',
      });
    }
    const extension = opts.compression === 'none' ? '' : compressionExtension(opts.compression);
    const body = await compressing;
    try {
      await mkdir(dir, { recursive: true, mode: 0o750 });
    } catch (e) {
      throw storageError('create archive directory', dir, e);
    }
    const final = join(dir, storedName(name, digest, extension));
    removeStaleTemps(dir); // what killed pushes left here (PostgreSQL retries the same file, into this directory)
    // Unique per host, process and call: the asynchronous pusher stores several files at once.
    const tmp = tempPathFor(final);
    try {
      const fh = await open(tmp, 'w', 0o640);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw storageError('store WAL file', final, e);
    }
    await fsyncPath(dir);
    return { status: 'stored', path: final };
  } finally {
    // The compressor may still read the data (a file found already archived): it goes back to the pool after.
    await compressing?.catch(() => {});
    poolFor(stanza.wal_segment_size).give(data);
  }
}

/** Reads a WAL file; one of segment size into a pooled buffer (give it back with poolFor(segmentSize).give). */
async function readWalFile(source: string, segmentSize: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(source, 'r');
  } catch (e) {
    throw storageError('read WAL file', source, e);
  }
  try {
    const size = (await fh.stat()).size;
    if (size !== segmentSize) return await fh.readFile();
    const buf = poolFor(segmentSize).take();
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    // Shrank while read: checkSegment reports it (a view, never given back to the pool).
    if (off < size) return buf.subarray(0, off);
    return buf;
  } catch (e) {
    throw storageError('read WAL file', source, e);
  } finally {
    await fh.close();
  }
}


function checkSegment(name: string, data: Buffer, stanza: StanzaInfo): void {
  if (name.endsWith('.partial') ? data.length > stanza.wal_segment_size : data.length !== stanza.wal_segment_size) {
    throw new PgpitrError('ERR_TARGET', `WAL segment "${name}" has ${data.length} bytes, the stanza's segment size is ${stanza.wal_segment_size}`, {
      hint: 'the file is truncated or belongs to a cluster with another wal_segment_size',
    });
  }
  const header = parseWalLongPageHeader(data);
  if (!header) throw new PgpitrError('ERR_TARGET', `"${name}" does not start with a WAL long page header`, { hint: 'the file is not a WAL segment, or it is damaged' });
  if (header.systemIdentifier !== stanza.system_identifier) {
    throw new PgpitrError('ERR_TARGET', `WAL segment "${name}" belongs to database system ${header.systemIdentifier}, stanza "${stanza.stanza}" is for system ${stanza.system_identifier}`, {
      hint: 'archive_command points this server at another cluster\'s stanza; give each cluster its own --stanza',
    });
  }
  const mismatch = segmentNameMismatch(name, header, stanza.wal_segment_size);
  if (mismatch) {
    throw new PgpitrError('ERR_TARGET', `WAL file "${name}" is not the segment its name says: ${mismatch}`, {
      hint: 'the file was copied or renamed to another segment\'s name; archive_command must pass %p, PostgreSQL\'s own file',
    });
  }
}

/** The stored copy of a WAL file, ignoring temporary files of unfinished pushes. */
export function findStored(dir: string, name: string): { stored: string; sha256: string; extension: string } | null {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw storageError('read archive directory', dir, e);
  }
  for (const stored of entries) {
    if (!stored.startsWith(name + '-')) continue;
    const parsed = parseStoredName(stored);
    if (parsed && parsed.name === name) return { stored, sha256: parsed.sha256, extension: parsed.extension };
  }
  return null;
}

/**
 * Fetches a WAL file into `dest`; false only when the repository and the stanza are healthy
 * and the archive does not have the file. Every other failure throws.
 */
export async function getWalFile(repo: string, stanza: string, name: string, dest: string): Promise<boolean> {
  const data = await fetchWalFile(repo, stanza, name);
  if (data === null) return false;
  const tmp = `${dest}.pgpitr-tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, dest);
  } catch (e) {
    throw storageError('write restored WAL file', dest, e);
  }
  return true;
}

/** An archived WAL file's content, decompressed and checked against its SHA-256; null when the archive does not have it. */
export async function fetchWalFile(repo: string, stanza: string, name: string): Promise<Buffer | null> {
  if (walFileKind(name) === null) throw new PgpitrError('ERR_USAGE', `"${name}" is not a WAL file name`, { hint: 'restore_command must pass %f and %p' });
  const dir = join(existingArchiveDir(repo, stanza), walFileSubdir(name));
  const found = findStored(dir, name);
  if (!found) return null;
  const path = join(dir, found.stored);
  let body: Buffer;
  try {
    body = readFileSync(path);
  } catch (e) {
    throw storageError('read archived WAL file', path, e);
  }
  const algo = ALGORITHM_OF[found.extension];
  let data: Buffer;
  try {
    data = algo ? await decompressBuffer(algo, body) : body;
  } catch (e) {
    throw new PgpitrError('ERR_STORAGE', `archived WAL file "${path}" cannot be decompressed: ${(e as Error).message}`, {
      hint: 'the repository file is damaged; restore it from another copy of the archive',
    });
  }
  const digest = sha256(data);
  if (digest !== found.sha256) {
    throw new PgpitrError('ERR_STORAGE', `archived WAL file "${path}" fails its checksum`, {
      detail: `expected SHA-256 ${found.sha256}, got ${digest}`,
      hint: 'the repository file is damaged; restore it from another copy of the archive',
    });
  }
  return data;
}

export interface ArchivedFile {
  name: string;
  sha256: string;
  extension: string;
  size: number;
  mtimeMs: number;
}

/** Every complete file in a stanza's archive. */
export function listArchive(repo: string, stanza: string): ArchivedFile[] {
  return scanArchive(repo, stanza).files;
}

/** Every complete file in a stanza's archive, and the paths of stale temporary files (archive-temp.ts). */
export function scanArchive(repo: string, stanza: string): { files: ArchivedFile[]; staleTemps: string[] } {
  const root = archiveDir(repo, stanza);
  const out: ArchivedFile[] = [];
  const stale: string[] = [];
  const scan = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw storageError('read archive directory', dir, e);
    }
    const others: string[] = [];
    for (const ent of entries) {
      if (ent.isDirectory()) {
        if (dir === root && /^[0-9A-F]{16}$/.test(ent.name)) scan(join(dir, ent.name));
        continue;
      }
      const parsed = parseStoredName(ent.name);
      if (!parsed) {
        others.push(ent.name);
        continue;
      }
      const st = statSync(join(dir, ent.name));
      out.push({ ...parsed, size: st.size, mtimeMs: st.mtimeMs });
    }
    stale.push(...staleTemps(dir, others));
  };
  scan(root);
  return { files: out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), staleTemps: stale };
}
