// A base backup read by pgpitr's own workers instead of the server's BASE_BACKUP:
// registered with the low-level API on one SQL session (low-level-api.ts),
// listed by a read method (pgdata-walk.ts), read by N threads (read-pool.ts)
// and handed to the sink as the same events a BASE_BACKUP stream gives — one
// tar stream per tablespace, then the backup_manifest we build, then the end
// LSN — so that every format, the WAL stream, progress, the state file and the
// clean-up are the engine's as for one stream. A sink writing plain files on this host (directRoot)
// lets the workers write them; the tar streams then carry only directories, links and the last files.

import type { BaseBackupEvents, TablespaceHeader } from '../../protocol/base-backup-stream.js';
import type { SqlClient } from '../../protocol/sql-client.js';
import { BackupManifestBuilder } from '../../postgres/backup-manifest.js';
import type { ManifestChecksumAlgorithm } from '../../storage/filter/manifest-checksum.js';
import { createManifestChecksum } from '../../storage/filter/manifest-checksum.js';
import { syncEncoder } from '../../storage/compress/sync-encoder.js';
import type { DirectTar, FileStore } from '../sink.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import { TarWriter } from './tar-writer.js';
import { PoolProgress } from './pool-progress.js';
import { copyIntoTar, copyThroughTar, copyToPath } from './file-copy.js';
import { copyToStore } from './copy-to-store.js';
import type { CopyContext } from './copy-context.js';
import { hostClock } from './source-clock.js';
import type { SourceClock } from './source-clock.js';
import { DestCreator } from './dest-creator.js';
import { parseLsn } from '../../postgres/lsn.js';
import { PgpitrError } from '../../common/errors.js';
import { timelineSwitched } from '../timeline-switched.js';
import { labelStartTimeline, startLowLevelBackup, stopLowLevelBackup } from './low-level-api.js';
import type { BackupStop } from './low-level-api.js';
import type { ListedFile, ListedTablespace } from './listing.js';
import type { FileReaders } from './read-job.js';
import { ChecksumReport } from './checksum-report.js';
import type { CopyJournal, JournalEntry } from './copy-journal.js';
import { reusable } from './copy-journal.js';
import { sweepForResume } from './resume-sweep.js';
import { watchPromotion } from './promotion-watch.js';
import type { PromotionWatch } from './promotion-watch.js';
import { OWN_FILES } from '../own-files.js';
import { intactControlFile, readLocal, readThroughServer } from './control-copy.js';
import { join } from 'node:path';
import { turnsEvery } from '../../common/event-loop-turns.js';

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
  /** Page checksum failures are warned of and the copy goes on to the end (options.ts). */
  recordChecksumFailures?: boolean | undefined;
  /** null: no backup_manifest. */
  manifest: { algorithm: ManifestChecksumAlgorithm; forceEncode: boolean } | null;
  /** Put tablespace_map in the base tar file (tar format, as BASE_BACKUP's TABLESPACE_MAP). */
  tablespaceMap: boolean;
  /**
   * The mode of the files the server would make itself (pg_file_create_mode: 0600, 0640 with group
   * access): backup_label's and tablespace_map's, which BASE_BACKUP sends with that mode.
   */
  fileMode: number;
  /** The timeline the server is on now (IDENTIFY_SYSTEM), asked right after the backup started. */
  currentTimeline(): Promise<number>;
  /** The readers of the chosen read method (N of them); onFailure: one broke, the backup must stop. */
  openReaders(jobs: number, onFailure: (e: Error) => void): FileReaders;
  /** Lists what to copy; called once the backup has started (through SQL for the sql read method: a promise). */
  /** What to copy, listed once the backup has started at startLsn. */
  list(startLsn: bigint): ListedTablespace[] | Promise<ListedTablespace[]>;
  /**
   * Looks at these files' sizes again right before they are copied, when the read method cannot do
   * it in its readers (the sql method: pg_stat_file; the direct readers restat as a copy begins).
   * They are then copied after the rest, once this settled.
   */
  restat?: ((files: ListedFile[]) => Promise<void>) | undefined;
  /** The local directory a tablespace's files go to when the sink writes plain files on this host. */
  directRoot?: ((tablespace: TablespaceHeader | null) => string) | undefined;
  /** With directRoot: the journal of what is copied, and for --resume the interrupted run's. */
  resume?: { journal: CopyJournal; previous: ReadonlyMap<string, JournalEntry>; resuming: boolean; spare: ReadonlySet<string> } | undefined;
  /** The files and tar files the readers write here are synced once the copy is over (not -N): see CopyContext.writeBehind. */
  writeBehind?: boolean | undefined;
  /** The clock of the files' times (the server's for the sql method); absent: this host's. */
  sourceClock?: SourceClock | undefined;
  /** The sink keeps no reference to a tar chunk once its tarData() settled (BackupSink.lendTarData). */
  tarDataReleases?: boolean | undefined;
  /** The sink takes its tar data compressed so (BackupSink.precompressTar): the readers must produce it. */
  tarEncoding?: { compression: CompressionAlgorithm; level: number | undefined } | null | undefined;
  /** The sink's file store (a repository's backup set), when it has one. */
  fileStore?: FileStore | undefined;
  /** The tar file begun last, when the readers may write members into it themselves (BackupSink.directTar). */
  directTar?: (() => DirectTar | null) | undefined;
  /** Bytes copied so far (whatever the way), for progress. */
  onBytes(n: number): void;
  warn(message: string): void;
  info(message: string): void;
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
  let progress: PoolProgress | null = null;
  let promotion: PromotionWatch | null = null;
  let creator: DestCreator | null = null;
  try {
    if (req.maxRateKb) pool.limitRate(req.maxRateKb * 1024);
    const resume = req.resume && req.directRoot && pool.writesLocal ? { journal: req.resume.journal, previous: req.resume.previous, kept: { files: 0, bytes: 0 } } : undefined;
    const ctx: CopyContext = { readers: pool, resume, startLsn: 0n, algorithm, checksums, manifest, writeBehind: req.writeBehind, clock: req.sourceClock ?? hostClock };
    // A file store takes large files in its stored form: only when the readers can produce it here.
    const store = pool.writesLocal && req.fileStore && canEncode(req.fileStore.encoding) ? req.fileStore : null;
    // Compressed tar data can only come from readers that compress (those of this host).
    const tarEncoding = req.tarEncoding ?? null;
    if (tarEncoding && !pool.writesLocal) throw new PgpitrError('ERR_INTERNAL', 'compressed tar data was promised by readers that cannot compress');

    // The interrupted run's WAL goes before this run's stream writes any (the sweep leaves pg_wal alone).
    if (resume && req.resume!.resuming) sweepForResume(join(req.directRoot!(null), 'pg_wal'), 'pg_wal/', () => false, new Set());

    // 1. Start: the checkpoint, then what the WAL stream needs to begin.
    const startText = await startLowLevelBackup(req.sql, req.serverVersionNum, req.label, req.fastCheckpoint);
    const startLsn = parseLsn(startText);
    ctx.startLsn = startLsn;
    const timeline = await req.currentTimeline();
    // A backup of a standby fails as soon as the standby is promoted, with the server's message.
    if (await inRecovery(req.sql)) promotion = watchPromotion(req.sql, req.serverVersionNum, (e) => pool.abort(e));
    await ev.started(startText, timeline);

    // 2. What to copy, listed after the start: a file created since is in the list.
    const listing = withoutOwnFiles(await req.list(startLsn));
    const headers = listing.map((t): TablespaceHeader => ({ oid: t.oid, location: t.location, sizeKb: BigInt(Math.ceil(t.bytes / 1024)) }));
    await ev.tablespaces(headers);
    if (resume && req.resume!.resuming) sweepTargets(req, listing, headers);

    // Files the readers write or store themselves never pass the engine's tar count: the pool's (pool-progress.ts).
    progress = new PoolProgress(() => pool.doneBytes, req.onBytes);
    if ((req.directRoot !== undefined || store !== null) && pool.writesLocal) progress.start();

    // 3. Each tablespace's tar file, the main data directory last.
    let stop: BackupStop | null = null;
    for (let t = 0; t < listing.length; t++) {
      const ts = listing[t]!;
      const header = headers[t]!;
      const isBase = ts.oid === null;
      await ev.tarBegin(isBase ? 'base.tar' : `${ts.oid}.tar`, isBase ? null : header);
      const tar = new TarWriter(ev, req.tarDataReleases === true, tarEncoding, () => progress!.counting);
      const files: ListedFile[] = [];
      let pgControl: ListedFile | null = null;
      for (const e of ts.entries) {
        if (e.kind === 'directory') await tar.entry({ name: e.name, type: 'directory', size: 0, mode: e.mode, mtime: e.mtime, linkname: '' });
        else if (e.kind === 'link') {
          // With tablespace_map (tar format) the server sends no pg_tblspc links (basebackup.c): extracted
          // on the database host, they would lead into the live tablespaces.
          if (!req.tablespaceMap) await tar.entry({ name: e.name, type: 'symlink', size: 0, mode: 0o777, mtime: e.mtime, linkname: e.target });
        }
        else if (isBase && e.name === PG_CONTROL) pgControl = e;
        else files.push(e);
      }
      // Into a repository, each file is let go of once copied (inLanes): at 100,000 files the listing
      // is ~30 MB of heap, beside a manifest that grows as it shrinks. Only its sizes (bytes) are
      // looked at after. The plain and tar paths still keep their partition arrays.
      ts.entries = [];
      // Largest first where order is free: the last file to finish is then a small one.
      const bySize = (of: ListedFile[]) => [...of].sort((a, b) => b.size - a.size);
      const root = pool.writesLocal ? (req.directRoot?.(isBase ? null : header) ?? null) : null;
      // The data directory's own files (configuration, which WAL does not cover: postgresql.auto.conf) have
      // their sizes looked at again near their read (restat). The direct readers do it as a copy begins; sinks
      // that start every file at once, or a read method that restats apart (req.restat), copy them last.
      // So are those outside the database directories (base/, global/): pg_logical/replorigin_checkpoint, rewritten
      // with another size by every checkpoint, is not rebuilt by WAL replay (a torn copy: PANIC at start).
      const last = (f: ListedFile) => isBase && !/^(base|global)\//.test(f.name);
      const own = files.filter(last);
      const rest = files.filter((f) => !last(f));
      const lastWave = async () => {
        await req.restat?.(own);
        return own;
      };
      if (root !== null) {
        const waves = req.restat ? [bySize(rest), own] : [bySize(files)];
        const dest = (f: ListedFile) => `${root}/${f.name}`;
        // A resumed run keeps or removes files as it goes: its readers create what they copy.
        if (!req.resume?.resuming) {
          creator = new DestCreator(waves.flat().map((f) => ({ path: dest(f), mode: f.mode & 0o777 })));
          ctx.creator = creator;
          creator.start();
        }
        // Taken in order by a few lanes, so that a file is claimed when a reader is about to be free for it.
        await inLanes(waves[0]!, pool.size * 2, (f) => copyToPath(ctx, f, dest(f)));
        if (waves.length > 1) await inLanes(await lastWave(), pool.size * 2, (f) => copyToPath(ctx, f, dest(f)));
        creator?.stop();
        // No file made after the copy: one made once its job removed it (dropped) would be left behind.
        await creator?.drained();
      }
      else if (store !== null) {
        // In lanes, as everywhere: one call per file at once held a suspended copy per file of the
        // cluster (~10 KB each: 1.1 GB of heap at 98,000 files).
        const wave = bySize(rest);
        files.length = rest.length = 0;
        await inLanes(wave, STORE_LANES(pool.size), (f) => copyToStore(ctx, f, store));
        await inLanes(await lastWave(), STORE_LANES(pool.size), (f) => copyToStore(ctx, f, store));
      }
      else {
        // An uncompressed tar file on this host: the readers write the members themselves, where they reserve them.
        const direct = pool.writesLocal && tarEncoding === null ? (req.directTar?.() ?? null) : null;
        if (direct !== null) {
          progress.start();
          pool.tarPlaces.tarEnd = await direct.position();
          if (req.restat) {
            await inLanes(bySize(rest), pool.size * 2, (f) => copyIntoTar(ctx, f, direct.path, pool.tarPlaces));
            await inLanes(await lastWave(), pool.size * 2, (f) => copyIntoTar(ctx, f, direct.path, pool.tarPlaces));
          } else {
            await inLanes(bySize(files), pool.size * 2, (f) => copyIntoTar(ctx, f, direct.path, pool.tarPlaces));
          }
          direct.continueAt(pool.tarPlaces.tarEnd);
        } else {
          // Turns are taken in lane order (the list's): a few files read ahead of the one the tar writes.
          await inLanes(rest, STORE_LANES(pool.size), (f) => copyThroughTar(ctx, f, tar));
          await inLanes(await lastWave(), STORE_LANES(pool.size), (f) => copyThroughTar(ctx, f, tar));
        }
      }
      progress.report();
      if (poolError) throw poolError;
      if (isBase) {
        // pg_control last, as the server sends it; then the end of the backup, whose label goes in.
        if (!pgControl) throw new PgpitrError('ERR_STORAGE', 'global/pg_control was not found in the data directory: a backup without it cannot start', { hint: 'check the data directory the server runs on (data_directory)' });
        // Read until its CRC matches (control-copy.ts): the server rewrites it in place.
        const control = await intactControlFile(pgControl.local ? readLocal(pgControl.source) : readThroughServer(req.sql, pgControl.source, pgControl.size), pgControl.serverName);
        await addBytes(tar, ctx, PG_CONTROL, control, pgControl.mode, pgControl.mtime);
        const promoted = await promotion?.stop();
        if (promoted) throw promoted;
        stop = await stopLowLevelBackup(req.sql, req.serverVersionNum, req.waitForArchive);
        checkStartTimeline(stop.labelFile, timeline);
        if (promotion) await checkStopTimeline(req.sql, timeline);
        await addGenerated(tar, ctx, LABEL_FILE, stop.labelFile, req.fileMode);
        // Sent even empty, as the server sends it for pg_basebackup -Ft.
        if (req.tablespaceMap) await addGenerated(tar, ctx, TABLESPACE_MAP, stop.tablespaceMap, req.fileMode);
      }
      await tar.end();
      await ev.tarEnd();
    }
    if (!stop) throw new PgpitrError('ERR_INTERNAL', 'the parallel backup listed no main data directory');
    if (resume && req.resume!.resuming) {
      const total = listing.reduce((a, t) => a + t.bytes, 0);
      req.info(`resumed: kept ${resume.kept.files} files (${resume.kept.bytes} of ${total} bytes) the interrupted run had copied, copied the rest`);
    }
    checksums.end(req.recordChecksumFailures);

    // 4. The manifest, then the end.
    if (manifest) {
      manifest.addWalRange(timeline, startLsn, parseLsn(stop.lsn));
      const chunks = manifest.finishChunks();
      await ev.manifestBegin();
      // Handed over one at a time and let go: the sink may copy each (the server's chunks are lent).
      for (let c = chunks.shift(); c !== undefined; c = chunks.shift()) await ev.manifestData(c);
      await ev.manifestEnd();
    }
    await ev.finished(stop.lsn, timeline);
  } catch (e) {
    // One file's copy failed while others run: they fail too, at once, rather than wait on readers
    // that are about to stop (a store would otherwise wait for their bytes forever).
    pool.abort(e as Error);
    throw e;
  } finally {
    creator?.stop();
    progress?.stop();
    await promotion?.stop();
    await pool.stop();
  }
}

/** Files in flight at once into a store or through a tar stream: enough to keep every reader fed with small files. */
const STORE_LANES = (readers: number) => Math.max(8, readers * 4);

/**
 * Runs fn over items in order, `lanes` at a time; the first failure stops the lanes from taking more.
 * The array lets go of each item as a lane takes it; the event loop gets a turn now and then (event-loop-turns.ts). */
async function inLanes<T>(items: (T | undefined)[], lanes: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const turn = turnsEvery();
  const lane = async () => {
    while (!failed && next < items.length) {
      const item = items[next]!;
      items[next++] = undefined;
      try {
        await fn(item);
        await turn();
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, items.length)) }, lane));
}

/** The source's own pgpitr files (a cluster made by pgpitr basebackup) are not copied: own-files.ts. */
function withoutOwnFiles(listing: ListedTablespace[]): ListedTablespace[] {
  return listing.map((ts) => {
    if (ts.oid !== null) return ts;
    const own = ts.entries.filter((e) => e.kind === 'file' && OWN_FILES.has(e.name));
    if (own.length === 0) return ts;
    return { ...ts, entries: ts.entries.filter((e) => !own.includes(e)), bytes: ts.bytes - own.reduce((a, e) => a + (e.kind === 'file' ? e.size : 0), 0) };
  });
}

/**
 * A standby's backup stops at its minimum recovery point, on the timeline replay had reached there:
 * one that followed its upstream to a new timeline during the backup (a cascading standby whose
 * upstream was promoted) would need WAL ranges of two timelines, which this backup's manifest
 * and a repository's record do not carry: refused, as a backup to take again.
 */
export async function checkStopTimeline(sql: Pick<SqlClient, 'query'>, timeline: number): Promise<void> {
  const end = Number((await sql.query<{ t: string | null }>('SELECT min_recovery_end_timeline::text AS t FROM pg_control_recovery()')).rows[0]?.t ?? 0);
  // Only a later one: right after a failover, before the standby's first restartpoint on the new
  // timeline, the control file may still name the earlier one.
  if (end > timeline) throw timelineSwitched(timeline, end);
}

async function inRecovery(sql: SqlClient): Promise<boolean> {
  return (await sql.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === true;
}

/**
 * backup_label and tablespace_map: made by the server at the end, written by us into the base tar
 * file with the mode BASE_BACKUP gives them (sendFileWithContent: pg_file_create_mode).
 */
async function addGenerated(tar: TarWriter, ctx: CopyContext, name: string, text: string, mode: number): Promise<void> {
  await addBytes(tar, ctx, name, Buffer.from(text, 'utf8'), mode, Math.floor(Date.now() / 1000));
}

/** A member whose bytes are here, into the tar stream and the backup_manifest. */
async function addBytes(tar: TarWriter, ctx: CopyContext, name: string, bytes: Buffer, mode: number, mtime: number): Promise<void> {
  await tar.file(name, bytes, mode, mtime);
  let hex = '';
  if (ctx.algorithm) {
    const c = createManifestChecksum(ctx.algorithm);
    c.update(bytes);
    hex = c.digestHex();
  }
  ctx.manifest?.addFile({ path: name, size: bytes.length, mtime, checksumAlgorithm: ctx.algorithm ?? 'NONE', checksumHex: hex });
}

function canEncode(e: FileStore['encoding']): boolean {
  return e.compression === 'none' || syncEncoder(e.compression, e.level) !== null;
}

/** A resumed backup's targets: only files the interrupted run copied and that can stand stay (resume-sweep.ts). */
function sweepTargets(req: ParallelBackupRequest, listing: ListedTablespace[], headers: TablespaceHeader[]): void {
  const { previous, spare } = req.resume!;
  // Any entry of a path vouches for keeping its file: a large file's ranges are journaled one by one.
  const byPath = new Map<string, JournalEntry>();
  for (const e of previous.values()) if (!byPath.has(e.path)) byPath.set(e.path, e);
  listing.forEach((ts, i) => {
    const files = new Map<string, ListedFile>();
    for (const e of ts.entries) if (e.kind === 'file') files.set(e.manifestPath, e);
    const prefix = ts.oid === null ? '' : `pg_tblspc/${ts.oid}/`;
    const root = req.directRoot!(ts.oid === null ? null : headers[i]!);
    sweepForResume(
      root,
      prefix,
      (path, size) => {
        // Kept when the journal vouches for the file, or for a range of it (a large file copied in ranges).
        const e = byPath.get(path);
        const f = files.get(path);
        return e !== undefined && f !== undefined && size <= e.size && reusable(e, f);
      },
      ts.oid === null ? spare : new Set(),
    );
  });
}

/**
 * The backup's WAL and manifest name the timeline the server was on when asked after the start;
 * the backup starts on its label's. They differ on a standby that moved to a new timeline since
 * its last restartpoint (where the backup starts): the WAL of the start is then on the old one.
 */
export function checkStartTimeline(labelFile: string, timeline: number): void {
  const started = labelStartTimeline(labelFile);
  if (started === null || started === timeline) return;
  throw new PgpitrError('ERR_TARGET', `the backup started on timeline ${started} (its backup_label) while the server was on timeline ${timeline}`, {
    hint: 'the standby switched timelines after its last restartpoint; run CHECKPOINT on it (a restartpoint on the new timeline), then the backup again',
  });
}
