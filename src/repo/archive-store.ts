// The WAL archive of a stanza: push (check, checksum, compress, store), get
// (find, decompress, verify) and list, on the repository's Storage. A stored
// file is visible only once complete: it is an atomic, synced Storage write
// (posix: temporary name, fsync, rename, fsync of the directory), so a push
// killed midway leaves nothing that get or list would take for a segment;
// what it leaves is removed by the next push into the directory
// (archive-temp.ts). Reading the server's file and writing the fetched one
// are the callers' (wal/pg-wal-file.ts): the archive only sees bytes.

import { PgpitrError } from '../common/errors.js';
import { compressBuffer, decompressBuffer } from '../storage/compress/buffer.js';
import { compressionExtension } from '../storage/compress/levels.js';
import type { CompressionAlgorithm } from '../storage/compress/common.js';
import { readAll } from '../storage/storage.js';
import type { StorageEntry } from '../storage/storage.js';
import { storageJoin, storageParent } from '../storage/storage-path.js';
import { parseWalLongPageHeader, segmentNameMismatch } from '../postgres/wal-page-header.js';
import type { WalLongPageHeader } from '../postgres/wal-page-header.js';
import { archivePath, walFileKind, walFileDirPath, storedName, parseStoredName } from './layout.js';
import { DAMAGED_ARCHIVED_FILE_HINT } from './damaged-hint.js';
import { readStanzaWithArchive } from './stanza.js';
import { removeStaleTemps, staleTemps } from './archive-temp.js';
import type { StanzaInfo } from './stanza.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';
import { ensureStanzaPresent } from './stanza-presence.js';
import { differentContent, partialOrRefusal } from './archive-conflict.js';
import { sha256, sha256Sliced } from './wal-digest.js';
import { contentXxh128, indexedDigest, indexRestorePoints, restorePointsToIndex, unindexRestorePoints } from './restore-point-index.js';
import type { IndexedSegment } from './restore-point-index.js';

export interface PushOptions {
  compression: CompressionAlgorithm | 'none';
  level?: number | undefined;
}

/** forkSegment: the segment a promotion ended its timeline in, all its WAL archived, the name with another server's copy (archive-conflict.ts). */
export type PushOutcome = { status: 'stored'; path: string } | { status: 'already-archived'; path: string; forkSegment?: true };

const ALGORITHM_OF: Record<string, CompressionAlgorithm> = { '.gz': 'gzip', '.lz4': 'lz4', '.zst': 'zstd' };

/** Refuses a name archive_command would never pass. */
export function checkWalFileName(name: string): void {
  if (walFileKind(name) === null) {
    throw new PgpitrError('ERR_USAGE', `"${name}" is not a WAL segment, .partial, .history or .backup file`, {
      hint: 'archive_command must pass %p, the path of the file PostgreSQL wants archived',
    });
  }
}

/**
 * A WAL file checked, hashed and (being) compressed once, for one or several repositories
 * (prepareWalData), stored in each by storePreparedWal.
 */
export interface PreparedWal {
  name: string;
  /** SHA-256 of the uncompressed content: the stored name carries it. */
  digest: string;
  /** '' or the compression's extension. */
  extension: string;
  /**
   * A segment's database system and segment size, from its own first page header (null for
   * history and backup files, which do not record them, unless the caller knows their cluster:
   * wal/archive-wal-file.ts reads the pg_control beside their pg_wal): each repository refuses a
   * file whose system is not its stanza's, whatever stanza the caller checked it with first.
   */
  systemIdentifier: string | null;
  segmentSize: number | null;
  /** Why the segment is not the one its name says (refused by every repository, after the system check), or null. */
  misnamed: PgpitrError | null;
  /** What the restore point index keeps of it (restore-point-index.ts), or null. */
  restorePoints: IndexedSegment | null;
  /** The stored bytes; compression runs on the thread pool, settled only when awaited. */
  body: Promise<Buffer>;
  /** Settles when nothing reads `data` any more (the caller may reuse it after). Never rejects. */
  done(): Promise<void>;
}

/**
 * Checks the WAL file `name` with content `data` against the stanza, hashes it and starts its
 * compression: the work a push does once, whatever the number of repositories. `data` is only
 * read, and no longer once done() settles.
 */
export async function prepareWalData(stanza: StanzaInfo, name: string, data: Buffer, opts: PushOptions): Promise<PreparedWal> {
  checkWalFileName(name);
  const kind = walFileKind(name);
  const checked = kind === 'segment' || kind === 'partial' ? checkSegment(name, data, stanza) : null;
  // Compression (on the thread pool for zstd and gzip) runs while the main thread hashes.
  const compressing = opts.compression === 'none' ? Promise.resolve(data) : compressBuffer(opts.compression, data, opts.level);
  compressing.catch(() => {}); // awaited by a store, unless the file is already archived
  const done = () => compressing.then(() => {}, () => {});
  let digest: string;
  let restorePoints: IndexedSegment | null;
  try {
    digest = await sha256Sliced(data);
    restorePoints = checked !== null && checked.misnamed === null ? await restorePointsToIndex(name, data, stanza.wal_segment_size) : null;
  } catch (e) {
    await done();
    throw e;
  }
  return {
    name,
    digest,
    extension: opts.compression === 'none' ? '' : compressionExtension(opts.compression),
    systemIdentifier: checked?.header.systemIdentifier ?? null,
    segmentSize: checked?.header.segmentSize ?? null,
    misnamed: checked?.misnamed ?? null,
    restorePoints,
    body: compressing,
    done,
  };
}

/**
 * Stores a prepared WAL file in one repository. Idempotent: the same content already archived is
 * "already-archived"; different content is refused.
 */
export async function storePreparedWal(repo: Repository, stanza: StanzaInfo, p: PreparedWal): Promise<PushOutcome> {
  if (p.systemIdentifier !== null && stanza.system_identifier !== p.systemIdentifier) throw otherSystem(p.name, p.systemIdentifier, stanza, repo);
  if (p.segmentSize !== null && stanza.wal_segment_size !== p.segmentSize) {
    throw new PgpitrError('ERR_TARGET', `WAL segment "${p.name}" has ${p.segmentSize} bytes, the segment size of stanza "${stanza.stanza}" in ${repo.location} is ${stanza.wal_segment_size}`, {
      hint: 'every repository of a stanza must hold the same cluster; recreate the stanza in this repository, or give it another stanza name',
    });
  }
  if (p.misnamed) throw p.misnamed;
  // A long-running pusher or receive-wal read the record earlier: the stanza may have been deleted since.
  await ensureStanzaPresent(repo, stanza);
  const dir = walFileDirPath(stanza.stanza, p.name);
  // Where directories are real (posix), the whole directory is one listing anyway, holding killed pushes'
  // temporary files, cleaned up below; object storage leaves none, and answers a prefix with one small page.
  const entries = await repo.storage.list(dir, { detail: false, ...(repo.storage.features.directories ? {} : { prefix: `${p.name}-` }) });
  const existing = storedCopies(entries, p.name);
  const other = existing.find((e) => e.sha256 !== p.digest);
  if (other) {
    // Unless it is the segment a promotion ended its timeline in, all of it archived (archive-conflict.ts).
    const content = async () => (ALGORITHM_OF[p.extension] ? decompressBuffer(ALGORITHM_OF[p.extension]!, await p.body) : p.body), archived = (n: string) => fetchWalFile(repo, stanza.stanza, n);
    const held = await partialOrRefusal(repo, dir, p.name, p.digest, entries, other, { stanza: stanza.stanza, segmentSize: stanza.wal_segment_size, content, archived });
    await syncStoredName(repo, dir); // PostgreSQL recycles the segment on this answer, as on "same content"
    return { status: 'already-archived', path: displayPath(repo, held), forkSegment: true };
  }
  // Beside the segment, in no order with it (a segment without its record is read; restore-point-index.ts).
  const indexing = indexRestorePoints(repo, stanza.stanza, p.name, p.digest, p.restorePoints);
  let outcome: PushOutcome;
  try {
    outcome = await storeChecked(repo, stanza, p, dir, entries, existing);
  } catch (e) {
    await indexing;
    if (p.restorePoints !== null) await unindexRestorePoints(repo, stanza.stanza, p.name, p.digest);
    throw e;
  }
  await indexing;
  return outcome;
}

async function storeChecked(repo: Repository, stanza: StanzaInfo, p: PreparedWal, dir: string, entries: StorageEntry[], existing: StoredWalFile[]): Promise<PushOutcome> {
  const same = existing[0];
  if (same) {
    // Its content was synced before its rename, but the push that renamed it may have been killed
    // (or failed its directory sync) before the name was made durable, or may still be on its way
    // there (a retry racing the first attempt): PostgreSQL recycles the segment on this answer.
    await syncStoredName(repo, dir);
    return { status: 'already-archived', path: displayPath(repo, storageJoin(dir, same.stored)) };
  }
  const body = await p.body;
  const final = storageJoin(dir, storedName(p.name, p.digest, p.extension));
  await removeStaleTemps(repo, dir, entries); // what killed pushes left here (PostgreSQL retries the same file, into this directory)
  await repo.storage.write(final, body, { atomic: true, sync: true });
  // Another push of the same name with other content (two clusters archiving into one stanza
  // after a split brain, both promoted to the same timeline) may have stored it meanwhile. Each
  // push lists after its own write, so of two racing pushes at most one sees no other copy and
  // succeeds; the other fails (PostgreSQL keeps the file and retries, and fails again: a person
  // must choose). Its copy is not taken back: a push of the same content (the asynchronous pusher
  // and a retry of archive_command) may have reported that very object stored. archive-get refuses
  // a name with two contents (findStored), naming both.
  const rival = storedCopies(await repo.storage.list(dir, { detail: false, prefix: `${p.name}-` }), p.name).find((e) => e.sha256 !== p.digest);
  if (rival) throw differentContent(repo, dir, p.name, p.digest, rival);
  // Again after a write that took long (retries, a slow sync): a stanza deleted meanwhile gets
  // nothing, and PostgreSQL keeps the file.
  try {
    await ensureStanzaPresent(repo, stanza);
  } catch (e) {
    // Taken back only when the stanza is gone (or another one): a record that could not be read
    // says nothing, and a push of the same content may have reported this very object stored.
    if (e instanceof PgpitrError && e.code === 'ERR_NOT_FOUND') await repo.storage.remove(final).catch(() => {});
    throw e;
  }
  return { status: 'stored', path: displayPath(repo, final) };
}

/** Makes a stored WAL file's name durable, and its directory's in the archive (where names need syncing). */
async function syncStoredName(repo: Repository, dir: string): Promise<void> {
  if (!repo.storage.features.pathSync || !repo.storage.pathSync) return;
  await repo.storage.pathSync(dir);
  const parent = storageParent(dir);
  if (parent !== dir) await repo.storage.pathSync(parent);
}

/**
 * Stores the WAL file `name` with content `data` in one repository (prepareWalData, then
 * storePreparedWal). `data` is only read, and no longer once this settles.
 */
export async function pushWalFile(repo: Repository, stanza: StanzaInfo, name: string, data: Buffer, opts: PushOptions): Promise<PushOutcome> {
  const prepared = await prepareWalData(stanza, name, data, opts);
  try {
    return await storePreparedWal(repo, stanza, prepared);
  } finally {
    // The compressor may still read the data (a file found already archived): the caller reuses it after.
    await prepared.done();
  }
}

function otherSystem(name: string, system: string, stanza: StanzaInfo, repo: Repository): PgpitrError {
  return new PgpitrError('ERR_TARGET', `WAL ${walFileKind(name) === 'segment' ? 'segment' : 'file'} "${name}" belongs to database system ${system}, stanza "${stanza.stanza}" is for system ${stanza.system_identifier} (PostgreSQL ${stanza.pg_major}, in ${repo.location})`, {
    hint: 'archive_command points this server at another cluster\'s stanza; give each cluster its own --stanza. After a pg_upgrade (a new system), create a stanza for the upgraded cluster and point archive_command at it, keeping the old stanza for its backups (README: "After a major-version upgrade")',
  });
}

/**
 * Checks a segment's size and reads its first page header. Its database system is compared with
 * each repository's stanza when it is stored there (storePreparedWal): the stanza given here may
 * be another repository's. Whether the header matches the name is refused there too, after that
 * comparison: a segment of another cluster is reported as such first.
 */
function checkSegment(name: string, data: Buffer, stanza: StanzaInfo): { header: WalLongPageHeader; misnamed: PgpitrError | null } {
  if (name.endsWith('.partial') ? data.length > stanza.wal_segment_size : data.length !== stanza.wal_segment_size) {
    throw new PgpitrError('ERR_TARGET', `WAL segment "${name}" has ${data.length} bytes, the stanza's segment size is ${stanza.wal_segment_size}`, {
      hint: 'the file is truncated or belongs to a cluster with another wal_segment_size',
    });
  }
  const header = parseWalLongPageHeader(data);
  if (!header) throw new PgpitrError('ERR_TARGET', `"${name}" does not start with a WAL long page header`, { hint: 'the file is not a WAL segment, or it is damaged' });
  const mismatch = segmentNameMismatch(name, header, stanza.wal_segment_size);
  const misnamed = mismatch
    ? new PgpitrError('ERR_TARGET', `WAL file "${name}" is not the segment its name says: ${mismatch}`, {
        hint: 'the file was copied or renamed to another segment\'s name; archive_command must pass %p, PostgreSQL\'s own file',
      })
    : null;
  return { header, misnamed };
}

export interface StoredWalFile {
  /** The stored object's name in its directory. */
  stored: string;
  sha256: string;
  extension: string;
}

/** The stored copies of a WAL file among a directory's entries, ignoring temporary files of unfinished pushes. */
function storedCopies(entries: StorageEntry[], name: string): StoredWalFile[] {
  const out: StoredWalFile[] = [];
  for (const e of entries) {
    if (!e.name.startsWith(name + '-')) continue;
    const parsed = parseStoredName(e.name);
    if (parsed && parsed.name === name) out.push({ stored: e.name, sha256: parsed.sha256, extension: parsed.extension });
  }
  return out;
}

/**
 * The stored copy of a WAL file in a stanza's archive; null when there is none. Copies with
 * different content (two clusters archiving into one stanza whose pushes raced) are refused:
 * which one the cluster being recovered wrote is not known here, and the wrong one ends its
 * recovery early or on another history.
 */
export async function findStored(repo: Repository, stanza: string, name: string): Promise<StoredWalFile | null> {
  const dir = walFileDirPath(stanza, name);
  const copies = storedCopies(await repo.storage.list(dir, { detail: false, prefix: `${name}-` }), name);
  const first = copies[0];
  if (first && copies.some((c) => c.sha256 !== first.sha256)) {
    const names = copies.map((c) => displayPath(repo, storageJoin(dir, c.stored)));
    throw new PgpitrError('ERR_STORAGE', `WAL file "${name}" is archived ${copies.length} times with different content in stanza "${stanza}" (${repo.location})`, {
      detail: names.join('\n'),
      hint: 'two clusters archived into this stanza; keep the copy written by the cluster being recovered (its archive_command log names it) and move the others out of the repository',
    });
  }
  return first ?? null;
}

/**
 * An archived WAL file's content, decompressed and checked against its SHA-256 (`quick`, for
 * recovery: a segment against the XXH3-128 its push recorded, if any: indexedDigest); null only when
 * the repository and the stanza are healthy and the archive does not have the file; else throws.
 */
export async function fetchWalFile(repo: Repository, stanza: string, name: string, systemId?: string | null, quick = false): Promise<Buffer | null> {
  if (walFileKind(name) === null) throw new PgpitrError('ERR_USAGE', `"${name}" is not a WAL file name`, { hint: 'restore_command must pass %f and %p' });
  const info = await readStanzaWithArchive(repo, stanza);
  // The cluster being recovered is another one (a stanza created again after pg_upgrade, another
  // repository's): its WAL would end recovery early (PostgreSQL takes a foreign segment for the end).
  if (systemId && info.system_identifier !== systemId) {
    throw new PgpitrError('ERR_CHECK', `stanza "${stanza}" in ${repo.location} is for database system ${info.system_identifier}, the cluster being recovered is system ${systemId}`, {
      hint: 'its WAL is not this cluster\'s: give restore_command the repository that holds it (--repo), or remove that repository from the configuration',
    });
  }
  const found = await findStored(repo, stanza, name);
  if (!found) return null;
  const path = storageJoin(walFileDirPath(stanza, name), found.stored);
  const [body, known] = await Promise.all([readAll(repo.storage, path), quick && walFileKind(name) === 'segment' ? indexedDigest(repo, stanza, name, found.sha256) : null]);
  if (body === null) throw disappearedWhileRead(repo, path);
  return decodeStoredWal(repo, path, found.extension, found.sha256, body, undefined, undefined, known);
}

/** An archived file listed, or found, and gone when it is read. */
export function disappearedWhileRead(repo: Repository, path: string): PgpitrError {
  return new PgpitrError('ERR_STORAGE', `archived WAL file "${displayPath(repo, path)}" disappeared while it was read`, { hint: 'is expire running at the same time? try again' });
}

/**
 * The stored bytes of an archived file (at `path`, stored with `extension`), decompressed and
 * checked against its SHA-256 (or `known`, the XXH3-128 recorded at its push, when it matches).
 * `spare` gives a buffer of at least the size asked for, which the content of a single zstd frame
 * is decoded into (archived-file-reader.ts reuses one over many segments); without it, or for
 * another compression, a new buffer. `digest` hashes the content elsewhere when it can (another
 * thread), null when it cannot: then it is hashed here.
 */
export async function decodeStoredWal(
  repo: Repository,
  path: string,
  extension: string,
  expected: string,
  body: Buffer,
  spare?: (size: number) => Buffer,
  digest?: (data: Buffer) => Promise<string> | null,
  known?: string | null,
): Promise<Buffer> {
  const shown = displayPath(repo, path);
  const algo = ALGORITHM_OF[extension];
  let data: Buffer;
  try {
    data = algo === 'zstd' && spare ? ((await decodeInto(body, spare)) ?? (await decompressBuffer(algo, body))) : algo ? await decompressBuffer(algo, body) : body;
  } catch (e) {
    throw new PgpitrError('ERR_STORAGE', `archived WAL file "${shown}" cannot be decompressed: ${(e as Error).message}`, {
      hint: DAMAGED_ARCHIVED_FILE_HINT,
    });
  }
  if (known && (await contentXxh128(data)) === known) return data;
  const got = (await digest?.(data)) ?? sha256(data);
  if (got !== expected) {
    throw new PgpitrError('ERR_STORAGE', `archived WAL file "${shown}" fails its checksum`, {
      detail: `expected SHA-256 ${expected}, got ${got}`,
      hint: DAMAGED_ARCHIVED_FILE_HINT,
    });
  }
  return data;
}

/** One zstd frame (as archive-push writes them) decoded into a spare buffer by libzstd, on the thread pool; null when it is not that (or libzstd is missing). */
async function decodeInto(body: Buffer, spare: (size: number) => Buffer): Promise<Buffer | null> {
  const native = (await import('../storage/compress/zstd-native.js')).nativeZstd();
  if (native === null || native.frameLength(body) !== body.length) return null;
  const size = native.frameContentSize(body);
  if (size === null) return null;
  // No WAL file is larger than 1 GiB (the largest segment size): a larger size is a damaged header.
  if (size > 1 << 30) throw new Error(`its zstd frame records ${size} bytes, more than any WAL file holds`);
  const into = spare(size);
  return into.subarray(0, await native.decompressIntoOnPool(body, into));
}

export interface ArchivedFile {
  name: string;
  sha256: string;
  extension: string;
  size: number;
  mtimeMs: number;
}

/** Every complete file in a stanza's archive. */
export async function listArchive(repo: Repository, stanza: string): Promise<ArchivedFile[]> {
  return (await scanArchive(repo, stanza)).files;
}

/** The storage path of an archived file. */
export function archivedFilePath(stanza: string, f: ArchivedFile): string {
  return storageJoin(walFileDirPath(stanza, f.name), storedName(f.name, f.sha256, f.extension));
}

/** Every complete file in a stanza's archive, and the storage paths of stale temporary files (archive-temp.ts). */
export async function scanArchive(repo: Repository, stanza: string): Promise<{ files: ArchivedFile[]; staleTemps: string[] }> {
  const root = archivePath(stanza);
  const out: ArchivedFile[] = [];
  const stale: string[] = [];
  const scan = async (dir: string, top: boolean) => {
    const entries = await repo.storage.list(dir);
    const others: StorageEntry[] = [];
    for (const ent of entries) {
      if (ent.type === 'directory') {
        if (top && /^[0-9A-F]{16}$/.test(ent.name)) await scan(storageJoin(dir, ent.name), false);
        continue;
      }
      const parsed = parseStoredName(ent.name);
      if (!parsed) {
        others.push(ent);
        continue;
      }
      out.push({ ...parsed, size: ent.size, mtimeMs: ent.mtimeMs });
    }
    stale.push(...staleTemps(dir, others));
  };
  await scan(root, true);
  return { files: out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), staleTemps: stale };
}
