// `verify`: re-reads everything a stanza stores and checks it against its
// recorded checksum: every file of every backup set (through the reader,
// which fails on a size or SHA-256 mismatch), every archived WAL file (through
// archive-get's own check), and that each backup's WAL range is in the
// archive, on the timeline replay reads each segment from with restore's
// defaults (restore/backup-wal-reach.ts), and the history files restore needs
// to follow the archive's timelines, and the archive's gaps past the oldest backup's start
// (verify-archive-gaps.ts: point-in-time recovery stops at one). Reports each problem with the
// path of the object (a gap: its first missing segment); stops at none.
// A diff or incr backup's files taken from another backup are read through
// it (from that backup's set), unless this run already read that stored file
// for the backup that holds it (its result, a problem included, then stands for
// both: a damaged file makes neither restorable); and every backup it takes files
// from must still be a complete backup. A record that cannot be parsed, and a set
// with a manifest but no record, are problems too (such a backup is out of info and
// restore); the files of a set whose record is damaged are read all the same. With --set, the WAL of that backup's range is read as well; a backup
// whose WAL is included must hold every segment of its range. What an expire
// running meanwhile removes (a backup, WAL) is not reported as missing.

import type { Repository } from '../repo/repository.js';
import { parseLsn, segmentBefore, segmentFileName, segmentNumber } from '../postgres/lsn.js';
import { fetchWalFile, findStored, listArchive } from '../repo/archive-store.js';
import { BackupSetReader } from '../repo/backup-set/reader.js';
import { backupDir, listRecords, RECORD_NAME, referencesOf } from '../repo/backup-set/record.js';
import { MANIFEST_NAME, manifestReferences } from '../repo/backup-set/manifest.js';
import { unrecordedSet, unrecordedSets } from '../repo/backup-set/unrecorded.js';
import { isPgpitrError, PgpitrError } from '../common/errors.js';
import { stanzaRecordPath } from '../repo/layout.js';
import { objectAt, storageJoin } from '../storage/storage-path.js';
import { stanzaArchive } from './stanza-reach.js';
import { backupWalNeeds, historyProblems } from '../restore/backup-wal-reach.js';
import { planBackupOf } from '../restore/plan-inputs.js';
import { gapProblem, requiredArchiveGaps } from './verify-archive-gaps.js';
import type { ArchiveGap } from './archive-gaps.js';
import { markerProblems } from '../repo/repo-marker.js';

/** The problem --set names a backup this repository does not hold. */
export const NO_SUCH_BACKUP = 'no complete backup with this id';

export interface VerifyProblem {
  /** The backup id, "archive", or "repository" (its marker, repo/repo-marker.ts). */
  scope: string;
  /** The object at fault (a stored file, an archived WAL file). */
  object: string;
  problem: string;
}

export interface VerifyReport {
  backups: { id: string; files: number; bytes: number }[];
  walFiles: number;
  /** Segments missing from the archive past the oldest backup's start (not looked for with --set). */
  archiveGaps: ArchiveGap[];
  problems: VerifyProblem[];
}

export async function verifyStanza(repo: Repository, stanza: string, segmentSize: number, opts: { set?: string | undefined; processMax: number }): Promise<VerifyReport> {
  const storage = repo.storage;
  const report: VerifyReport = { backups: [], walFiles: 0, archiveGaps: [], problems: [] };
  for (const m of await markerProblems(storage, repo.encryption ? await repo.encryption.block() : undefined)) report.problems.push({ scope: 'repository', object: objectAt(storage.location, m.object), problem: m.problem });
  const all = await listRecords(storage, stanza);
  const records = all.filter((r) => r.state === 'complete' && (opts.set === undefined || r.id === opts.set));
  const completeIds = new Set(all.filter((r) => r.state === 'complete').map((r) => r.id));
  // What reading each stored file gave, by its location: a backup taking it from another set reuses it.
  // Kept only for the sets a backup verified here takes files from (otherwise ~200 bytes per file of
  // every set: 100 MB more peak memory for three full backups of 98,000 files).
  const taken = new Set(records.flatMap(referencesOf));
  const read = new Map<string, string | null>();
  // A record that does not parse: the backup it describes is out of info and restore.
  for (const r of all) {
    if (r.damaged && (opts.set === undefined || r.id === opts.set)) report.problems.push({ scope: r.id, object: objectAt(storage.location, storageJoin(backupDir(stanza, r.id), RECORD_NAME)), problem: r.error ?? 'the record is damaged' });
  }
  // A set with a manifest and no record, not marked by an expire: a backup that lost its record
  // (backup-set/unrecorded.ts). Judged again at the end, and reported only if it is still so then.
  const noRecord = (await unrecordedSets(storage, stanza, all)).filter((l) => !l.leftover && (opts.set === undefined || l.id === opts.set)).map((l) => l.id);
  if (opts.set !== undefined && records.length === 0 && !all.some((r) => r.id === opts.set && r.damaged)) report.problems.push({ scope: opts.set, object: objectAt(storage.location, backupDir(stanza, opts.set)), problem: NO_SUCH_BACKUP });
  const archived = await listArchive(repo, stanza);
  const plan = await stanzaArchive(repo, stanza, segmentSize, archived);
  const names = new Set(plan.names);
  // History files restore needs and cannot read; a file stored with two contents (archive-get refuses it).
  const archiveProblem = (object: string, problem: string) => {
    if (!report.problems.some((p) => p.scope === 'archive' && p.object === object)) report.problems.push({ scope: 'archive', object, problem });
  };
  for (const name of plan.conflicting) archiveProblem(name, `WAL file ${name} is stored twice with different contents (two clusters archiving into the stanza?): archive-get refuses it, and recovery stops there`);
  for (const u of plan.unreadable) archiveProblem(u.name, u.message);
  const unreadable = new Set(plan.unreadable.map((u) => u.name));
  for (const h of historyProblems(plan.archive, records.flatMap((r) => (r.timeline ? [r.timeline] : [])))) if (!unreadable.has(h.name)) archiveProblem(h.name, h.problem);
  // WAL missing past the oldest backup: one problem per gap. --set looks at one backup's range only.
  if (opts.set === undefined) {
    report.archiveGaps = await requiredArchiveGaps(repo, stanza, segmentSize, archived, plan);
    for (const g of report.archiveGaps.map(gapProblem)) archiveProblem(g.object, g.problem);
  }
  // A set whose record is damaged is read too, through its manifest: whether putting its record back
  // from a copy would make it restorable (its WAL range, in the record, is not known).
  const damagedSets = all.filter((r) => r.damaged && (opts.set === undefined || r.id === opts.set));
  for (const r of [...records, ...damagedSets]) {
    const before = report.problems.length;
    await verifyBackup(r);
    // Expired while this ran (its record went first): what it found missing is not a problem.
    if (report.problems.length > before && (await storage.info(storageJoin(backupDir(stanza, r.id), RECORD_NAME))) === null) {
      report.problems.splice(before);
      report.backups = report.backups.filter((b) => b.id !== r.id);
    }
  }
  async function verifyBackup(r: (typeof records)[number]): Promise<void> {
    let reader: BackupSetReader;
    try {
      reader = await BackupSetReader.open(storage, backupDir(stanza, r.id));
    } catch (e) {
      if (isOutage(e)) throw e;
      report.problems.push({ scope: r.id, object: objectAt(storage.location, storageJoin(backupDir(stanza, r.id), MANIFEST_NAME)), problem: (e as Error).message });
      return;
    }
    let bytes = 0;
    // Files taken from a backup that is not complete: one problem for them all (the cause), not one per file.
    const lost = new Set(manifestReferences(reader.manifest).filter((ref) => !completeIds.has(ref)));
    for (const ref of lost) {
      const n = reader.manifest.files.filter((f) => f.reference === ref).length;
      report.problems.push({ scope: r.id, object: objectAt(storage.location, backupDir(stanza, ref)), problem: `backup ${r.id} takes ${n} file(s) from backup ${ref}, which is not a complete backup of the stanza (those files are not read)` });
    }
    const files: typeof reader.manifest.files = [];
    // A reused result must be of the same bytes: this manifest's size and digest for the file, too
    // (a damaged entry of a manifest taking it from another set would otherwise pass here, and fail restore).
    const readKey = (f: (typeof reader.manifest.files)[number]) => `${reader.storedLocation(f)}\0${f.size}\0${f.xxh128 ?? f.sha256 ?? ''}`;
    for (const f of reader.manifest.files) {
      if (f.reference !== undefined && lost.has(f.reference)) continue;
      const where = reader.storedLocation(f);
      if (f.reference === undefined || !read.has(readKey(f))) files.push(f);
      else {
        const problem = read.get(readKey(f))!;
        if (problem !== null) report.problems.push({ scope: r.id, object: where, problem });
        else bytes += f.size;
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const f = files[next++]!;
        const where = reader.storedLocation(f);
        try {
          for await (const chunk of await reader.read(f)) bytes += (chunk as Buffer).length;
          if (taken.has(f.reference ?? r.id)) read.set(readKey(f), null);
        } catch (e) {
          if (isOutage(e)) throw e;
          report.problems.push({ scope: r.id, object: where, problem: (e as Error).message });
          if (taken.has(f.reference ?? r.id)) read.set(readKey(f), (e as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.processMax) }, worker));
    report.backups.push({ id: r.id, files: reader.manifest.files.length, bytes });
    if (r.start_lsn && r.stop_lsn && r.timeline) {
      const included = new Set(reader.manifest.files.map((f) => f.path));
      const stop = parseLsn(r.stop_lsn);
      if (r.wal === 'included') {
        for (let s = segmentNumber(parseLsn(r.start_lsn), segmentSize); s <= segmentBefore(stop, segmentSize); s++) {
          const name = segmentFileName(r.timeline, s, segmentSize);
          if (!included.has(`pg_wal/${name}`)) report.problems.push({ scope: r.id, object: `${reader.manifest.backup_id}:pg_wal/${name}`, problem: `WAL segment ${name}, needed to make backup ${r.id} consistent, is not in the backup that includes its WAL` });
        }
      }
      // From the archive, on the timeline replay reads each segment from (backup-wal-reach.ts).
      for (const name of backupWalNeeds(planBackupOf(r), plan.archive)) {
        if (!names.has(name)) report.problems.push({ scope: r.id, object: name, problem: `WAL segment ${name}, needed to make backup ${r.id} consistent, ${plan.conflicting.includes(name) ? 'is stored twice with different contents' : 'is not in the archive'}` });
        else if (opts.set !== undefined) await readWal(name, r.id);
      }
    }
  }
  async function readWal(name: string, scope: string): Promise<void> {
    report.walFiles++;
    try {
      await fetchWalFile(repo, stanza, name);
    } catch (e) {
      if (isOutage(e)) throw e;
      // Gone since it was listed, while it was read: an expire removed it (it removes only what no kept backup needs).
      if ((await findStored(repo, stanza, name).catch(() => undefined)) === null) return;
      if (scope === 'archive') archiveProblem(name, (e as Error).message);
      else report.problems.push({ scope, object: name, problem: (e as Error).message });
    }
  }
  if (opts.set === undefined) for (const name of new Set(archived.map((f) => f.name))) if (!plan.conflicting.includes(name)) await readWal(name, 'archive');
  for (const id of noRecord) {
    if ((await unrecordedSet(storage, stanza, id))?.leftover !== false) continue;
    const takers = all.filter((r) => !r.damaged && referencesOf(r).includes(id)).map((r) => r.id);
    const problem = takers.length > 0
      ? `backup set ${id} has a manifest but no record, and backup ${takers.join(', ')} takes files from it: it cannot be restored until the record is back (copy ${RECORD_NAME} from a copy of the repository); expire keeps the set`
      : `backup set ${id} has a manifest but no record: it is not a backup any command sees (expire keeps it: copy the record back from a copy of the repository, or remove the set with pgpitr expire --set=${id})`;
    report.problems.push({ scope: id, object: objectAt(storage.location, storageJoin(backupDir(stanza, id), RECORD_NAME)), problem });
  }
  // Deleted while this ran (stanza-delete removes the record first): what went missing is no damage.
  if (report.problems.length > 0 && (await storage.info(stanzaRecordPath(stanza))) === null) {
    throw new PgpitrError('ERR_NOT_FOUND', `stanza "${stanza}" was deleted from repository "${repo.location}" while verify ran: nothing is left to verify`, { hint: 'pgpitr info lists the stanzas of the repository' });
  }
  return report;
}

/**
 * A failure that says nothing of the stored object: the store out of reach, credentials refused,
 * no permission to read, no file descriptor left, a wrong passphrase, a signal. The command fails
 * with it (its own exit code: 3, 9, 5, 2, 130), rather than reporting every object as damaged (7).
 */
function isOutage(e: unknown): boolean {
  if (isPgpitrError(e) && ['ERR_CONNECTION', 'ERR_CONNECTION_LOST', 'ERR_USAGE', 'ERR_INTERRUPTED'].includes(e.code)) return true;
  const errno = (x: unknown) => (x as NodeJS.ErrnoException | undefined)?.code;
  return [errno(e), errno((e as { cause?: unknown } | undefined)?.cause)].some((c) => c === 'EACCES' || c === 'EPERM' || c === 'EMFILE' || c === 'ENFILE' || c === 'ENOMEM');
}
