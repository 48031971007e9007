// A base backup read by pgpitr's own workers instead of the server's BASE_BACKUP:
// registered with the low-level API on one SQL session (low-level-api.ts),
// listed by a read method (pgdata-walk.ts), read by N threads (read-pool.ts)
// and handed to the sink as the same events a BASE_BACKUP stream gives — one
// tar stream per tablespace, then the backup_manifest we build, then the end
// LSN — so that every format, the WAL stream, progress, the state file and the
// clean-up are the engine's as for one stream. A sink that writes plain files
// on this host (directRoot) lets the workers write the files themselves; the
// tar streams then carry only directories, links and the last files.

import type { BaseBackupEvents, TablespaceHeader } from '../../protocol/base-backup-stream.js';
import type { SqlClient } from '../../protocol/sql-client.js';
import { encodeHeader, paddingFor, TAR_END } from '../../storage/tar/tar-header.js';
import type { TarEntry } from '../../storage/tar/tar-header.js';
import { BackupManifestBuilder } from '../../postgres/backup-manifest.js';
import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { createManifestChecksum, crc32cHex } from '../../storage/filter/manifest-checksum.js';
import { crc32cCombine } from '../../storage/filter/crc32c-combine.js';
import { closeSync, constants, openSync, unlinkSync } from 'node:fs';
import { parseLsn } from '../../postgres/lsn.js';
import { PgpitrError, storageError } from '../../common/errors.js';
import { startLowLevelBackup, stopLowLevelBackup } from './low-level-api.js';
import type { BackupStop } from './low-level-api.js';
import type { ListedFile, ListedTablespace } from './listing.js';
import type { FileReaders, ReadJob } from './read-job.js';
import { ChecksumReport } from './checksum-report.js';

export interface ParallelBackupRequest {
  /** The session that holds the backup open; closing it ends the backup on the server. */
  sql: SqlClient;
  serverVersionNum: number;
  systemIdentifier: string;
  label: string;
  fastCheckpoint: boolean;
  /** pg_backup_stop's wait_for_archive (-X none: the WAL must be archived before the backup is). */
  waitForArchive: boolean;
  jobs: number;
  maxRateKb?: number | undefined;
  verifyChecksums: boolean;
  /** null: no backup_manifest. */
  manifest: { algorithm: ManifestChecksumAlgorithm; forceEncode: boolean } | null;
  /** Put tablespace_map in the base tar file (tar format, as BASE_BACKUP's TABLESPACE_MAP). */
  tablespaceMap: boolean;
  /** The timeline the server is on now (IDENTIFY_SYSTEM), asked right after the backup started. */
  currentTimeline(): Promise<number>;
  /** The readers of the chosen read method (N of them); onFailure: one broke, the backup must stop. */
  openReaders(jobs: number, onFailure: (e: Error) => void): FileReaders;
  /** Lists what to copy; called once the backup has started (through SQL for the sql read method: a promise). */
  list(): ListedTablespace[] | Promise<ListedTablespace[]>;
  /** The local directory a tablespace's files go to when the sink writes plain files on this host. */
  directRoot?: ((tablespace: TablespaceHeader | null) => string) | undefined;
  /** Bytes copied so far (whatever the way), for progress. */
  onBytes(n: number): void;
  warn(message: string): void;
}

const LABEL_FILE = 'backup_label';
const TABLESPACE_MAP = 'tablespace_map';
const PG_CONTROL = 'global/pg_control';

export async function runParallelBackup(req: ParallelBackupRequest, ev: BaseBackupEvents): Promise<void> {
  let poolError: Error | null = null;
  const pool = req.openReaders(req.jobs, (e) => (poolError ??= e));
  const checksums = new ChecksumReport(req.warn);
  const manifest = req.manifest ? new BackupManifestBuilder({ serverVersion: req.serverVersionNum, systemIdentifier: req.systemIdentifier, forceEncode: req.manifest.forceEncode }) : null;
  const algorithm = req.manifest?.algorithm ?? null;
  let progressTimer: NodeJS.Timeout | null = null;
  try {
    if (req.maxRateKb) pool.limitRate(req.maxRateKb * 1024);

    // 1. Start: the checkpoint, then what the WAL stream needs to begin.
    const startText = await startLowLevelBackup(req.sql, req.serverVersionNum, req.label, req.fastCheckpoint);
    const startLsn = parseLsn(startText);
    const timeline = await req.currentTimeline();
    await ev.started(startText, timeline);

    // 2. What to copy, listed after the start: a file created since is in the list.
    const listing = await req.list();
    const headers = listing.map((t): TablespaceHeader => ({ oid: t.oid, location: t.location, sizeKb: BigInt(Math.ceil(t.bytes / 1024)) }));
    await ev.tablespaces(headers);

    // Progress of files written by the workers themselves: read from the shared count.
    let reported = 0;
    const reportBytes = () => {
      const now = pool.doneBytes;
      if (now > reported) req.onBytes(now - reported);
      reported = now;
    };
    if (req.directRoot && pool.writesLocal) progressTimer = setInterval(reportBytes, 200);

    // 3. Each tablespace's tar file, the main data directory last.
    let stop: BackupStop | null = null;
    for (let t = 0; t < listing.length; t++) {
      const ts = listing[t]!;
      const header = headers[t]!;
      const isBase = ts.oid === null;
      await ev.tarBegin(isBase ? 'base.tar' : `${ts.oid}.tar`, isBase ? null : header);
      const tar = new TarWriter(ev);
      const files: ListedFile[] = [];
      let pgControl: ListedFile | null = null;
      for (const e of ts.entries) {
        if (e.kind === 'directory') await tar.entry({ name: e.name, type: 'directory', size: 0, mode: e.mode, mtime: e.mtime, linkname: '' });
        else if (e.kind === 'link') await tar.entry({ name: e.name, type: 'symlink', size: 0, mode: 0o777, mtime: e.mtime, linkname: e.target });
        else if (isBase && e.name === PG_CONTROL) pgControl = e;
        else files.push(e);
      }
      const root = pool.writesLocal ? (req.directRoot?.(isBase ? null : header) ?? null) : null;
      const copy = (f: ListedFile, viaTar: boolean) => copyFile(pool, f, startLsn, algorithm, viaTar ? null : `${root}/${f.name}`, tar, checksums, manifest);
      if (root !== null) {
        // Largest first, large files in ranges: every worker has work until the end.
        const order = [...files].sort((a, b) => b.size - a.size);
        await Promise.all(order.map((f) => (splittable(f, algorithm) ? copyInRanges(pool, f, startLsn, algorithm, `${root}/${f.name}`, checksums, manifest) : copy(f, false))));
        reportBytes();
      } else {
        await Promise.all(files.map((f) => copy(f, true)));
      }
      if (poolError) throw poolError;
      if (isBase) {
        // pg_control last, as the server sends it; then the end of the backup, whose label goes in.
        if (pgControl) await copy(pgControl, true);
        stop = await stopLowLevelBackup(req.sql, req.serverVersionNum, req.waitForArchive);
        await addGenerated(tar, manifest, algorithm, LABEL_FILE, stop.labelFile);
        if (req.tablespaceMap && stop.tablespaceMap !== '') await addGenerated(tar, manifest, algorithm, TABLESPACE_MAP, stop.tablespaceMap);
      }
      await tar.end();
      await ev.tarEnd();
    }
    if (!stop) throw new PgpitrError('ERR_INTERNAL', 'the parallel backup listed no main data directory');
    checksums.throwIfAny();

    // 4. The manifest, then the end.
    if (manifest) {
      manifest.addWalRange(timeline, startLsn, parseLsn(stop.lsn));
      const bytes = manifest.finish();
      await ev.manifestBegin();
      await ev.manifestData(bytes);
      await ev.manifestEnd();
    }
    await ev.finished(stop.lsn, timeline);
  } finally {
    if (progressTimer) clearInterval(progressTimer);
    await pool.stop();
  }
}

/** One file through a worker: into the tar stream (dest null) or written by the worker at dest. */
async function copyFile(
  pool: FileReaders,
  f: ListedFile,
  startLsn: bigint,
  algorithm: ManifestChecksumAlgorithm | null,
  dest: string | null,
  tar: TarWriter,
  checksums: ChecksumReport,
  manifest: BackupManifestBuilder | null,
): Promise<void> {
  const job: ReadJob = {
    id: 0,
    source: f.source,
    name: f.manifestPath,
    offset: 0,
    length: f.size,
    verify: f.blockBase === null ? null : { blockBase: f.blockBase, startLsn: startLsn.toString() },
    checksum: algorithm,
    dest: dest === null ? null : { path: dest, mode: f.mode & 0o777, create: true, sync: false },
  };
  const turn = dest === null ? tar.turn() : null;
  let begun = false;
  const begin = async () => {
    if (begun) return;
    begun = true;
    await turn!.wait;
    await tar.entry({ name: f.name, type: 'file', size: f.size, mode: f.mode, mtime: f.mtime, linkname: '' });
  };
  try {
    const r = await pool.run(
      job,
      turn && {
        chunk: async (data) => {
          await begin();
          await tar.data(data);
        },
      },
    ).catch((e: Error & { path?: string }) => Promise.reject(copyError(e, f)));
    if (r.gone) return;
    if (turn) {
      await begin();
      await tar.pad(f.size);
    }
    checksums.add(f.manifestPath, r.failures, r.partialPage);
    manifest?.addFile({ path: f.manifestPath, size: r.length, mtime: f.mtime, checksumAlgorithm: algorithm ?? 'NONE', checksumHex: r.checksumHex ?? '' });
  } finally {
    turn?.done();
  }
}

/** Ranges of a large file copied by different workers at once (written in place, their CRC-32Cs combined). */
const RANGE = 32 * 1024 * 1024;

function splittable(f: ListedFile, algorithm: ManifestChecksumAlgorithm | null): boolean {
  return f.size > 2 * RANGE && (algorithm === null || algorithm === 'NONE' || algorithm === 'CRC32C');
}

async function copyInRanges(
  pool: FileReaders,
  f: ListedFile,
  startLsn: bigint,
  algorithm: ManifestChecksumAlgorithm | null,
  dest: string,
  checksums: ChecksumReport,
  manifest: BackupManifestBuilder | null,
): Promise<void> {
  createEmptyFile(dest, f.mode & 0o777);
  const ranges: Promise<Awaited<ReturnType<FileReaders['run']>>>[] = [];
  for (let offset = 0; offset < f.size; offset += RANGE) {
    const job: ReadJob = {
      id: 0,
      source: f.source,
      name: f.manifestPath,
      offset,
      length: Math.min(RANGE, f.size - offset),
      verify: f.blockBase === null ? null : { blockBase: f.blockBase, startLsn: startLsn.toString() },
      checksum: algorithm === 'CRC32C' ? 'CRC32C' : null,
      dest: { path: dest, mode: f.mode & 0o777, create: false, sync: false },
    };
    ranges.push(pool.run(job, null).catch((e: Error & { path?: string }) => Promise.reject(copyError(e, f))));
  }
  const done = await Promise.all(ranges);
  if (done.some((r) => r.gone)) {
    // Dropped while it was copied: left out, as a file gone before its copy.
    removeFile(dest);
    return;
  }
  let crc = done[0]!.crc32c ?? 0;
  for (const r of done.slice(1)) crc = crc32cCombine(crc, r.crc32c ?? 0, r.length);
  checksums.add(f.manifestPath, done.flatMap((r) => r.failures), done.some((r) => r.partialPage));
  manifest?.addFile({ path: f.manifestPath, size: f.size, mtime: f.mtime, checksumAlgorithm: algorithm ?? 'NONE', checksumHex: algorithm === 'CRC32C' ? crc32cHex(crc) : '' });
}

function copyError(e: Error & { path?: string }, f: ListedFile): PgpitrError {
  // The sql read method's readers fail with what they know (a lost connection, a server error): kept as it is.
  if (e instanceof PgpitrError) return e;
  return new PgpitrError('ERR_STORAGE', e.message, { hint: e.path === f.source ? `the file is "${f.manifestPath}" of the data directory` : 'check the target file system (space, permissions)', cause: e });
}

function createEmptyFile(path: string, mode: number): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode));
  } catch (e) {
    throw storageError('create', path, e);
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    throw storageError('remove', path, e);
  }
}

/** backup_label and tablespace_map: made by the server at the end, written by us into the base tar file. */
async function addGenerated(tar: TarWriter, manifest: BackupManifestBuilder | null, algorithm: ManifestChecksumAlgorithm | null, name: string, text: string): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  const mtime = Math.floor(Date.now() / 1000);
  await tar.entry({ name, type: 'file', size: bytes.length, mode: 0o600, mtime, linkname: '' });
  await tar.data(bytes);
  await tar.pad(bytes.length);
  let hex = '';
  if (algorithm) {
    const c = createManifestChecksum(algorithm);
    c.update(bytes);
    hex = c.digestHex();
  }
  manifest?.addFile({ path: name, size: bytes.length, mtime, checksumAlgorithm: algorithm ?? 'NONE', checksumHex: hex });
}

/**
 * One tablespace's tar stream, made from entries. Files are copied by several
 * workers at once but their members follow each other: each takes a turn, in
 * the order the turns were asked for, and holds it from its header to its padding.
 */
class TarWriter {
  private last: Promise<void> = Promise.resolve();

  constructor(private readonly ev: BaseBackupEvents) {}

  turn(): { wait: Promise<void>; done(): void } {
    const wait = this.last;
    let done!: () => void;
    this.last = new Promise<void>((r) => (done = r));
    return { wait, done };
  }

  async entry(e: TarEntry): Promise<void> {
    await this.ev.tarData(encodeHeader(e));
  }

  async data(b: Buffer): Promise<void> {
    await this.ev.tarData(b);
  }

  async pad(size: number): Promise<void> {
    const n = paddingFor(size);
    if (n > 0) await this.ev.tarData(Buffer.alloc(n));
  }

  async end(): Promise<void> {
    await this.last;
    await this.ev.tarData(TAR_END);
  }
}
