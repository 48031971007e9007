// The restore engine: plan (which backup, which WAL), refuse what cannot
// succeed before writing anything, write the files N at a time (verified),
// the recovery settings for the server, sync, and pg_control last. Reads the
// repository through interfaces (a Storage holding the backup sets, and the
// WAL archive's listing and files), so it knows no repository driver.

import { shellWord } from '../common/shell-quote.js';
import { statSync, unlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import type { Storage } from '../storage/storage.js';
import { makeDirsSync, syncTree, writeFileAtomicSync, fsyncPathSync } from '../storage/durable.js';
import { formatLsn } from '../postgres/lsn.js';
import { writeRecoverySettings } from './write-recovery-settings.js';
import { manifestReferences } from '../repo/backup-set/manifest.js';
import { missingStoredText, storedObjects } from '../repo/backup-set/stored-objects.js';
import { BackupSetReader } from '../repo/backup-set/reader.js';
import { backupDir, referencesOf } from '../repo/backup-set/record.js';
import type { BackupRecord } from '../repo/backup-set/record.js';
import { checkUnarchivedWal } from './unarchived-wal.js';
import { checkUnbegunTimeline } from './unbegun-timeline.js';
import { majorOfDataDir, refuseStrayTablespaces } from './stray-tablespaces.js';
import { planWithRestorePoint } from './restore-point-search.js';
import { checkTimeTargetReach } from './target-time-reach.js';
import { tablespaceOverlap } from './tablespace-overlap.js';
import { checkXidTargetReach } from './target-xid-reach.js';
import { checkLsnTargetReach } from './target-lsn-reach.js';
import type { RestorePlan } from './plan.js';
import { planArchiveOf, planBackupOf } from './plan-inputs.js';
import type { WalArchiveView } from './plan-inputs.js';
import type { TargetOptions } from './restore-target.js';
import { FileRestorer } from './file-restorer.js';
import { RESTORE_LOCK, chownOutside, chownTree, lockTarget, rootOwnerFor } from './target-owner.js';
import { CopyThread } from './copy-thread.js';
import type { FileRestoreResult } from './file-restorer.js';
import { RESTORE_MARKER, isRestoreFile, checkSameSystem, checkTablespaceDir, checkTarget, checkWalDir, inspectTarget, overlaps, recheckTarget, refuseInsideRepository, tablespaceLeftBehind, tablespaceMapByOid, walLinkOf } from './restore-target-dir.js';
import type { TablespaceMapping } from './restore-target-dir.js';
import type { RecoveryOption } from './recovery-options.js';
import { databasesLeftOut, inDatabases, pageImageRisk } from './database-selection.js';
import type { DatabaseChoice, RecordedDatabase } from './database-selection.js';
import { standaloneHint } from './standalone-hint.js';

export interface RestoreRequest {
  storage: Storage;
  stanza: string;
  segmentSize: number;
  records: BackupRecord[];
  archive: WalArchiveView;
  target: TargetOptions;
  set?: string | undefined;
  pgData: string;
  delta: boolean;
  standby: boolean;
  /** Recover to the end of the archive although it has a gap: recovery ends at the gap (--accept-archive-gap). */
  acceptArchiveGap?: boolean | undefined;
  /** The directory pg_wal links to (--waldir); absent: pg_wal is a directory, or with delta stays the link it is. */
  walDir?: string | undefined;
  /** Selective restore: the databases to restore, or to leave out (restore/database-selection.ts). */
  databases?: DatabaseChoice;
  /** Settings added to those restore writes (--recovery-option, --archive-mode off: restore/recovery-options.ts). */
  recoveryOptions?: readonly RecoveryOption[];
  tablespaceMap: TablespaceMapping[];
  tablespaceMapAll?: string | undefined;
  /** The directories of the local repositories configured: restore writes nowhere in them. */
  repositoryPaths?: readonly string[];
  processMax: number;
  /** restore_command, for the timeline recovery follows (null: the latest, a standby following promotions). */
  restoreCommand(timeline: number | null): string;
  dryRun: boolean;
  noSync?: boolean;
  log(line: string): void;
  /** Called once the plan and the target are checked, before anything is written (not in a dry run): a refusal still writes nothing. */
  claimBackup?(plan: RestorePlan): Promise<void>;
  /** Called once the plan is checked and the target prepared, before the files are written (not in a dry run). */
  beforeFiles?(plan: RestorePlan): Promise<void>;
  /** Called once restore is complete. */
  afterFiles?(plan: RestorePlan): Promise<void>;
  onProgress?(bytesDone: number, bytesTotal: number, filesDone: number, filesTotal: number): void;
}

export interface RestoreOutcome {
  plan: RestorePlan;
  /** Without --set: the diff and incr backups passed over, and the backup each takes files from that is not complete. */
  passedOver: { backup: string; missing: string }[];
  files: FileRestoreResult | null;
  bytesTotal: number;
  tablespaces: { oid: number; path: string }[];
  /** Selective restore: the databases whose files are zeros, to be dropped once the server is up. */
  databasesLeftOut: RecordedDatabase[];
  /** Where pg_wal links to, or null: a directory in the data directory. */
  walDir: string | null;
}

export async function restore(req: RestoreRequest): Promise<RestoreOutcome> {
  // The copier threads boot (their modules, the native libraries) on the other cores while the
  // plan is made; the file restorer stops them, and so does a refusal before it runs.
  const threads = req.dryRun ? [] : Array.from({ length: Math.max(1, req.processMax) }, () => new CopyThread());
  try {
    return await restoreWith(req, threads);
  } finally {
    await Promise.all(threads.map((t) => t.stop()));
  }
}

async function restoreWith(req: RestoreRequest, threads: CopyThread[]): Promise<RestoreOutcome> {
  // 1. The plan, from the catalog and the archive.
  const archive = await planArchiveOf(req.archive, req.segmentSize);
  // Without --set, a diff or incr that takes files from a backup no longer complete is passed over
  // for an older backup that can be restored (with --set, it is refused below, naming what is missing).
  const complete = new Set(req.records.filter((r) => r.state === 'complete').map((r) => r.id));
  const passedOver: RestoreOutcome['passedOver'] = [];
  const candidates = req.records.map((r) => {
    const p = planBackupOf(r);
    const lost = referencesOf(r).find((id) => !complete.has(id));
    if (p.complete && lost !== undefined && req.set === undefined) {
      req.log(`backup ${r.id} is passed over: it takes files from backup ${lost}, which is not a complete backup`);
      passedOver.push({ backup: r.id, missing: lost });
      return { ...p, complete: false };
    }
    return p;
  });
  if (passedOver.length > 0 && !candidates.some((c) => c.complete)) {
    throw new PgpitrError('ERR_NOT_FOUND', `no backup of stanza ${req.stanza} can be restored: every complete one takes files from a backup that is no longer complete (${passedOver.map((x) => `${x.backup} from ${x.missing}`).join(', ')})`, {
      hint: 'take a full backup (pgpitr backup --type full); pgpitr info and pgpitr verify say what is missing',
    });
  }
  // A record that cannot be read (damaged, undecryptable) is no backup to choose: said as such, not as "not complete".
  const damaged = req.records.filter((r) => r.damaged === true && (req.set === undefined ? !candidates.some((c) => c.complete) : r.id === req.set));
  if (damaged.length > 0) {
    throw new PgpitrError('ERR_STORAGE', `${req.set !== undefined ? `the record of backup ${req.set}` : `stanza ${req.stanza} has no complete backup it can read: the record of ${damaged.map((r) => `backup ${r.id}`).join(', ')}`} cannot be read (${damaged.map((r) => r.error ?? 'damaged').join('; ')})`, {
      hint: 'put back its backup.json from a copy of the repository, or restore another backup; pgpitr verify checks the rest',
    });
  }
  const readSegment = (name: string, upcoming?: readonly string[]): Promise<Buffer | null> => req.archive.readSegment(name, upcoming);
  // A standby waits for WAL past the end of the archive: a target not archived yet may come.
  let plan: RestorePlan;
  try {
    const index = req.archive.restorePoints?.bind(req.archive);
    plan = await planWithRestorePoint(candidates, archive, req.target, req.set, readSegment, req.log, req.standby, index);
    if (!req.standby) {
      await checkTimeTargetReach(plan, archive, req.target, readSegment, req.log);
      await checkXidTargetReach(plan, archive, req.target, readSegment, req.log);
      await checkLsnTargetReach(plan, archive, req.target, readSegment, req.log);
    }
  } finally {
    await req.archive.doneReadingSegments?.();
  }
  const b = plan.backup;
  const point = plan.restorePoint;
  if (point && req.target.target.kind === 'name') {
    req.log(`restore point "${req.target.target.name}" found at ${formatLsn(point.lsn)} on timeline ${point.timeline}, written ${new Date(point.timeMs).toISOString()}: recovery stops there`);
  }
  // Which server it needs: another major version's binaries fail on a setting before PostgreSQL says why.
  const versionNum = req.records.find((r) => r.id === b.id)?.pg_version_num;
  req.log(`backup ${b.id} (${versionNum ? `PostgreSQL ${Math.floor(versionNum / 10000)}, ` : ''}timeline ${b.timeline}, ${formatLsn(b.startLsn)} to ${formatLsn(b.stopLsn)}): ${plan.reason}`);
  // A newer backup whose record cannot be read is never chosen: said, not passed over in silence.
  for (const r of req.records) if (r.damaged && r.id > b.id && req.set === undefined) req.log(`warning: backup ${r.id} is passed over: its record cannot be read (${r.error ?? 'damaged'}); pgpitr verify and info name it`);
  // Up to a target only where its position is known (an LSN, a restore point); a time or a transaction is found by the replay itself.
  const kind = req.target.target.kind;
  const upTo = kind === 'lsn' || (kind === 'name' && point) ? 'to reach the target' : 'to be consistent';
  const then = kind === 'time' || kind === 'xid' ? '; recovery replays on from there until the target' : kind === 'end' ? '; recovery replays on from there to the end of the archive' : '';
  if (plan.walNeeded.length > 0) req.log(`WAL needed ${upTo}: ${plan.walNeeded[0]} to ${plan.walNeeded[plan.walNeeded.length - 1]} (${plan.walNeeded.length} segment(s), all archived)${then}; archive continues to ${plan.archiveEnd} along timeline ${plan.branch.timeline}`);
  else req.log(`WAL needed to be consistent: in the backup itself; archive continues to ${plan.archiveEnd} along timeline ${plan.branch.timeline}`);
  for (const w of plan.wentOn) {
    req.log(`warning: timeline ${w.timeline} went on past its fork to timeline ${plan.branch.timeline} at ${w.fork} (archived to ${w.last}, as far as timeline ${plan.branch.timeline} reaches): recovery follows timeline ${plan.branch.timeline}, the latest, and leaves that WAL out. If timeline ${plan.branch.timeline} is a copy's (restored and promoted elsewhere with this stanza's archive_command), restore with --target-timeline ${w.timeline}`);
  }
  checkArchiveGap(plan, req);
  checkUnbegunTimeline(plan, req);
  const reader = await BackupSetReader.open(req.storage, backupDir(req.stanza, b.id));
  const m = reader.manifest;
  // Without them no server starts as a copy of this backup (pg_control), or it would recover from a later
  // checkpoint than the backup's start (backup_label): refused before anything is written.
  for (const needed of ['global/pg_control', 'backup_label']) {
    if (!m.files.some((f) => f.path === needed)) {
      throw new PgpitrError('ERR_STORAGE', `backup ${b.id} holds no ${needed}: its manifest is damaged`, { hint: 'restore another backup (pgpitr info lists them), and run pgpitr verify' });
    }
  }
  const record = req.records.find((r) => r.id === b.id);
  if ((record?.page_checksum_failures ?? []).length > 0) req.log(`warning: backup ${b.id} met page checksum failures in its source (pgpitr info --set ${b.id} names them): those pages are restored as damaged as they were`);
  const leftOut = databasesLeftOut(b.id, record?.databases ?? [], req.databases ?? { include: [], exclude: [] });
  const risk = leftOut.length > 0 ? pageImageRisk(record?.page_images, leftOut) : null;
  if (risk !== null && !(req.recoveryOptions ?? []).some((o) => o.name === 'ignore_invalid_pages' && /^(on|true|1|yes)$/i.test(o.value))) {
    // Not a usage error: another repository's backup may be safe (restore's choice of repository goes on).
    throw new PgpitrError('ERR_CHECK', `backup ${b.id} cannot be restored in part safely: ${risk}; recovery would stop at the first such page of a database left out`, {
      hint: 'restore every database, or accept it with --recovery-option ignore_invalid_pages=on (recovery then skips changes to pages it cannot find, in any database; remove the setting once the databases left out are dropped)',
    });
  }
  const leftOutOids = new Set(leftOut.map((d) => d.oid));
  if (leftOut.length > 0) req.log(`databases left out, their files written as zeros (drop them once the server is up): ${leftOut.map((d) => `${d.name} (oid ${d.oid})`).join(', ')}`);
  const bytesTotal = m.files.reduce((a, f) => a + (inDatabases(f.path, leftOutOids) ? 0 : f.size), 0);
  // A diff or incr backup: the backups whose sets hold its unchanged files must all be there.
  const refs = manifestReferences(m);
  for (const ref of refs) {
    if (!complete.has(ref)) {
      throw new PgpitrError('ERR_NOT_FOUND', `backup ${b.id} takes files from backup ${ref}, which is not a complete backup of stanza ${req.stanza}`, {
        hint: 'restore another backup (pgpitr info lists them); pgpitr verify reports what else is missing',
      });
    }
  }
  if (refs.length > 0) req.log(`backup ${b.id} takes ${m.files.filter((f) => f.reference !== undefined).length} unchanged files from backup(s) ${refs.join(', ')}`);
  // Every file to be read has its stored bytes (a lifecycle rule, a removal by hand): refused now, not
  // midway, after a --delta removed the old cluster's pg_control and what the backup does not hold.
  const stored = await storedObjects(req.storage, req.stanza, b.id, reader);
  const lost = m.files.filter((f) => !inDatabases(f.path, leftOutOids) && !stored.has(f));
  if (lost.length > 0) {
    throw new PgpitrError('ERR_STORAGE', `backup ${b.id} cannot be restored: ${missingStoredText(lost, reader)}`, {
      hint: 'restore another backup (pgpitr info lists them, --set ID chooses one); pgpitr verify reports what else is missing',
    });
  }

  // 2. Where things go, refused before anything is written.
  const targetState = inspectTarget(req.pgData);
  const delta = checkTarget(targetState, req.delta);
  if (delta && !targetState.interruptedRestore) checkSameSystem(targetState.path, record?.system_identifier);
  if (delta && leftOut.length > 0) req.log(`warning: --delta writes zeros over the files the target holds for the databases left out`);
  if (targetState.interruptedRestore) req.log(`${targetState.path} holds a restore that did not finish: resuming it (only what differs is written)`);
  const tablespaceDirs = new Map<number, string>();
  /** Each tablespace's version directory in the backup (PG_<version>_<catalog>). */
  const versionDirs = new Map<number, string | null>();
  // A map naming no tablespace of the backup (a typo) before any directory is judged: the one meant would go where it was.
  const tablespaceMap = tablespaceMapByOid(req.tablespaceMap, m.tablespaces, record?.tablespace_names, b.id);
  for (const ts of m.tablespaces) {
    const mapped = tablespaceMap.find((t) => t.key === String(ts.oid))?.path ?? (req.tablespaceMapAll ? join(req.tablespaceMapAll, String(ts.oid)) : ts.location);
    // An in-place tablespace (allow_in_place_tablespaces, 15+; the server gives its location as
    // pg_tblspc/<oid>) stays a directory of the data directory, unless mapped elsewhere.
    if (mapped === `pg_tblspc/${ts.oid}`) continue;
    const own = m.directories.map((d) => new RegExp(`^pg_tblspc/${ts.oid}/([^/]+)$`).exec(d.path)?.[1]).find((x) => x !== undefined) ?? null;
    if (!isAbsolute(mapped)) throw new PgpitrError('ERR_UNSAFE_PATH', `tablespace ${ts.oid}'s location "${mapped}" is not absolute`, { hint: 'map it with --tablespace-map OID=/absolute/path' });
    // Nested either way counts (as written or through links): a delta clears what a tablespace directory holds beyond the backup's.
    const given = tablespaceMap.some((t) => t.key === String(ts.oid)) || req.tablespaceMapAll !== undefined;
    if ([...tablespaceDirs.values()].some((d) => overlaps(d, mapped)) || overlaps(mapped, targetState.path)) throw tablespaceOverlap(ts.oid, record?.tablespace_names?.find((x) => x.oid === ts.oid)?.name, mapped, given, targetState.path);
    checkTablespaceDir(mapped, ts.oid, delta, own, join(targetState.path, 'pg_tblspc', String(ts.oid)), given);
    const left = delta ? tablespaceLeftBehind(mapped, own, join(targetState.path, 'pg_tblspc', String(ts.oid))) : null;
    if (left !== null) req.log(`warning: tablespace ${ts.oid} moves from ${left} to ${mapped}: ${join(left, own!)} stays where it is, and the restored cluster no longer uses it; remove it once the restored cluster is checked`);
    tablespaceDirs.set(ts.oid, mapped);
    versionDirs.set(ts.oid, own);
  }
  const tablespaces = [...tablespaceDirs].map(([oid, path]) => ({ oid, path }));
  // pg_wal: a link to --waldir, else a directory. A delta over a cluster whose pg_wal is a link does
  // not trust that link by itself (it may be another cluster's WAL, copied along): --waldir says so.
  const walDir = req.walDir !== undefined && isAbsolute(req.walDir) ? resolve(req.walDir) : req.walDir; // without a trailing slash
  const linked = delta && walDir === undefined ? walLinkOf(targetState.path) : null;
  if (linked !== null) req.log(`warning: pg_wal is a link to ${linked}: it becomes a directory in the data directory (the WAL there is left alone); to keep the link, restore with --waldir ${shellWord(linked)}`);
  if (walDir !== undefined) {
    checkWalDir(walDir, delta, targetState.path);
    const shared = [...tablespaceDirs.values()].find((t) => overlaps(t, walDir));
    if (shared !== undefined) throw new PgpitrError('ERR_USAGE', `the WAL directory "${walDir}" and a tablespace's directory "${shared}" overlap`, { hint: 'give each its own directory (--waldir, --tablespace-map OID=PATH)' });
    req.log(`pg_wal: a link to ${walDir}`);
  }
  refuseInsideRepository([['the data directory', targetState.path], ...tablespaces.map((t) => [`tablespace ${t.oid}'s directory`, t.path] as const), ...(walDir !== undefined ? [['the WAL directory', walDir] as const] : [])], req.repositoryPaths ?? []);
  // A delta over a cluster with a tablespace the backup does not hold is refused while its version directory is there (stray-tablespaces.ts).
  const major = record?.pg_version_num ? Math.floor(record.pg_version_num / 10000) : majorOfDataDir(targetState.path);
  if (delta && major !== null) refuseStrayTablespaces(targetState.path, new Set(m.tablespaces.map((t) => t.oid)), major, [targetState.path, ...tablespaceDirs.values(), ...(walDir !== undefined ? [walDir] : [])], b.id);
  // WAL of the old cluster that the archive lacks, which the delta would remove (unarchived-wal.ts).
  if (delta && !targetState.interruptedRestore && record?.system_identifier) {
    checkUnarchivedWal(targetState.path, [join(targetState.path, 'pg_wal'), ...(walDir !== undefined ? [walDir] : [])], {
      segmentSize: req.segmentSize, systemIdentifier: record.system_identifier, from: b.startLsn, archived: new Set(req.archive.storedNames?.() ?? req.archive.names()),
      inBackup: new Set(m.files.map((f) => f.path)), backupStop: b.stopLsn, branch: plan.branch, target: req.target.target, standby: req.standby, stanza: req.stanza, archiveEnd: plan.archiveEnd, log: req.log,
    });
  }
  if (req.dryRun) {
    const zeroed = m.files.filter((f) => inDatabases(f.path, leftOutOids)).length;
    const what = `${m.files.length - zeroed} files (${bytesTotal} bytes)${zeroed > 0 ? ` and ${zeroed} files of zeros` : ''}`;
    // Which files differ, the restore finds by reading each one there: a dry run reads none.
    req.log(delta ? `would compare ${what} with those in ${targetState.path}, writing the ones that differ, and remove what the backup does not hold (found by reading every file there: a dry run reads none)` : `would write ${what} into ${targetState.path}`);
    for (const t of tablespaces) req.log(`tablespace ${t.oid}${((n) => (n ? ` (${n})` : ''))(record?.tablespace_names?.find((x) => x.oid === t.oid)?.name)} into ${t.path}`);
    // Names only: a primary_conninfo may hold a password.
    if ((req.recoveryOptions ?? []).length > 0) req.log(`would add to the recovery settings: ${req.recoveryOptions!.map((o) => o.name).join(', ')}`);
    if (req.standby && !(req.recoveryOptions ?? []).some((o) => o.name === 'primary_conninfo')) req.log('the standby would have no primary_conninfo unless the backup\'s configuration sets one: it would replay WAL from the archive only');
    return { plan, passedOver, files: null, bytesTotal, tablespaces, databasesLeftOut: leftOut, walDir: walDir ?? null };
  }

  // 3. The backup claimed (the repository's lease: expire keeps it), the lock, the marker, the files,
  // the recovery settings, sync, pg_control, and the marker goes.
  await req.claimBackup?.(plan);
  const marker = join(targetState.path, RESTORE_MARKER);
  // The levels above the target made here are root's 0700 when run as root: the warning below names them.
  const madeAbove = makeDirsSync(targetState.path, 0o700, !req.noSync).slice(1);
  const lock = await lockTarget(targetState.path);
  // The directory this restore holds: given to the server's user at the end only if it is still this one.
  const held = statSync(targetState.path);
  try {
    // Looked at again under the lock: a server started on the target meanwhile, or another restore
    // that wrote it while this one planned (its empty directory is a cluster now), is refused.
    recheckTarget(targetState, delta, req.delta, record?.system_identifier);
    const files = await writeTarget();
    await req.afterFiles?.(plan);
    return { plan, passedOver, files, bytesTotal, tablespaces, databasesLeftOut: leftOut, walDir: walDir ?? null };
  } finally {
    await lock.release();
  }

  async function writeTarget(): Promise<FileRestoreResult> {
    // The spool first: one that cannot be written (the default /var/spool/pgpitr, run as the
    // server's user) fails the restore before the marker, which would make the next run "resume".
    await req.beforeFiles?.(plan);
    const restorer = new FileRestorer(reader, { target: targetState.path, tablespaceDirs, ...(walDir !== undefined ? { walDir } : {}) });
    let bytesDone = 0;
    let filesDone = 0;
    // What progress counts: every file restored, pg_control (last) included; restore's own files, should a backup hold them, are not.
    const filesTotal = m.files.filter((f) => !isRestoreFile(f.path)).length;
    const files = await restorer.restore({
      processMax: req.processMax,
      threads,
      delta,
      keep: [marker, join(targetState.path, RESTORE_LOCK)],
      // The marker once the roots outside are made: a delta that cannot make one leaves the old
      // cluster as it was, never a directory a rerun would take for a restore that ended.
      beforeChanges: () => writeFileAtomicSync(marker, `restore of backup ${b.id} by pid ${process.pid}\n`, true, 0o600),
      zeroed: (path) => inDatabases(path, leftOutOids),
      // Each file synced by its copier as soon as it is written, while the others are copied: the
      // pass over the tree below then finds little left to flush.
      sync: !req.noSync,
      onFile: (_p, bytes) => {
        bytesDone += bytes;
        filesDone++;
        req.onProgress?.(bytesDone, bytesTotal, filesDone, filesTotal);
      },
    });
    writeRecoverySettings(targetState.path, req, plan.branch.timeline, plan.backup.timeline, !req.noSync);
    const owner = rootOwnerFor(targetState.path);
    if (owner) {
      chownTree(targetState.path, owner, { follow: true, expect: { dev: held.dev, ino: held.ino } });
      chownOutside(owner, walDir, [...tablespaceDirs].map(([oid, path]) => ({ path, versionDir: versionDirs.get(oid) ?? null })), restorer.madeAbove, restorer.outsideIds);
    } else if (process.getuid?.() === 0) {
      const above = madeAbove.length > 0 ? `; restore made ${madeAbove.join(', ')} above it, root's with mode 0700: open them to that user too (chown postgres: or chmod 755)` : '';
      req.log(`warning: run as root into a directory root owns, the restored files are root's: the server refuses to start as root; give them to the server's user (chown -R postgres: ${shellWord(targetState.path)}${tablespaceDirs.size > 0 || walDir !== undefined ? ', and the tablespace and WAL directories' : ''}) before starting it, or restore into a directory that user owns${above}`);
    }
    if (!req.noSync) {
      // Every file this restore wrote is synced already (by its copier, or here). What is left: the
      // directories' entries, and, where files were not all written now (delta keeps those that
      // match, possibly still unflushed) or their owner changed since, the files again.
      const files = delta || owner !== null;
      await syncTree(targetState.path, { files });
      // A tablespace root may hold other clusters' version directories (not this restore's to walk):
      // its own entries, and this backup's version directory.
      for (const [oid, dir] of tablespaceDirs) {
        const own = versionDirs.get(oid);
        if (own) await syncTree(join(dir, own), { files });
        fsyncPathSync(dir);
      }
      if (walDir !== undefined) await syncTree(walDir, { files });
    }
    // Counted with the others, as the backup counts it: always written, even by a delta.
    files.bytesWritten += await restorer.restoreControl(owner, !req.noSync);
    files.written++;
    fsyncPathSync(join(targetState.path, 'global'));
    unlinkSync(marker);
    req.onProgress?.(bytesTotal, bytesTotal, filesTotal, filesTotal); // 100% once nothing is left to do that matters
    // The lock goes before the last sync: a data directory that is started (and backed up) never holds it.
    await lock.release();
    fsyncPathSync(targetState.path);
    return files;
  }
}

/**
 * A gap after the WAL the plan needs: recovery to the end of the archive would end there and
 * promote, and what the archive holds after the gap would be lost without a word. Refused, unless
 * asked for (--accept-archive-gap) or a standby (which streams past it, if its primary still has
 * the WAL); a warning for a target, which PostgreSQL refuses to give up short of.
 */
function checkArchiveGap(plan: RestorePlan, req: Pick<RestoreRequest, 'target' | 'standby' | 'acceptArchiveGap' | 'log'>): void {
  const gap = plan.gap;
  if (gap === null) return;
  const what = `the archive has a gap: WAL segment ${gap.missing} is missing, and WAL is archived again from ${gap.resumesAt} on`;
  const kind = req.target.target.kind;
  if (kind === 'end' && !req.standby && !req.acceptArchiveGap) {
    throw new PgpitrError('ERR_NOT_FOUND', `${what}; recovery to the end of the archive would end at ${plan.archiveEnd}, and the WAL after the gap would be lost`, {
      hint: (plan.backup.standalone ? standaloneHint(plan.backup.id) : '') +
        `archive ${gap.missing} (from the old primary's pg_wal, or another repository: pgpitr archive-push) and restore again; or restore to a target before the gap; or give --accept-archive-gap to recover up to the gap and end there`,
    });
  }
  if (kind === 'immediate') return;
  req.log(
    `warning: ${what}: ` +
      (kind === 'end'
        ? req.standby
          ? `the standby replays the archive up to ${plan.archiveEnd}, then needs its primary to stream the rest`
          : `recovery ends at ${plan.archiveEnd} (--accept-archive-gap)`
        : `a target after ${plan.archiveEnd} cannot be reached (PostgreSQL then stops: "recovery ended before configured recovery target was reached")`),
  );
}
