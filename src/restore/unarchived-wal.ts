// WAL a delta restore would remove that exists nowhere else: segments in the old cluster's WAL
// directory that hold this system's WAL after the backup's start and are not in the archive
// (archive_command failing or behind when the server stopped, and always the segment it was
// writing). PostgreSQL's own procedure for a point-in-time recovery in place says to save them
// first. Recovery to the end of the archive would end before them, and their transactions would
// be gone without a word: refused, naming them, when they are segments of the branch recovery
// follows. A recovery target lies in the archive (the plan and the reach checks refuse one past
// it): they are its abandoned future, said and removed with the rest of the old cluster; so are a
// standby's (WAL past the archive comes from its primary) and another timeline's (a copy's own,
// promoted without archiving into this stanza). The segment a primary stopped cleanly began only
// for its shutdown checkpoint holds no transaction: it goes without a word
// (postgres/shutdown-segment.ts). What the warning advises depends on whose WAL it is: only a
// primary's own WAL on the followed branch is the stanza's to archive; a standby's is its
// primary's while that runs (a partly streamed segment pushed from it would conflict with the
// primary's own), and another timeline's is never this stanza's.

import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { parseSegmentFileName, segmentStart, timelineHistoryFileName } from '../postgres/lsn.js';
import type { Lsn } from '../postgres/lsn.js';
import { parseWalLongPageHeader, segmentNameMismatch, WAL_LONG_HEADER_SIZE } from '../postgres/wal-page-header.js';
import { walFileHead } from '../postgres/wal-file-system.js';
import type { RecoveryTarget } from './restore-target.js';
import { branchSpans, parseTimelineHistory, timelineOfSegment } from '../postgres/timeline-history.js';
import { holdsOnlyShutdownCheckpoint } from '../postgres/shutdown-segment.js';
import { controlCheckpoint, DB_IN_ARCHIVE_RECOVERY, DB_SHUTDOWNED_IN_RECOVERY } from '../postgres/control-file.js';
import { STANDBY_SIGNAL_FILE } from '../postgres/restore-settings.js';
import { crc32c } from '../storage/filter/crc32c.js';
import { WalRecordScanner } from '../postgres/wal-records.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';

/** access/rmgrlist.h, pg_control.h: the WAL switch a backup stop of a primary writes. */
const RM_XLOG_ID = 0;
const XLOG_SWITCH = 0x40;

export interface UnarchivedWal {
  dir: string;
  /** Segment names, in order. */
  names: string[];
  /** Of them, those the server marked for archiving (archive_status/<name>.ready): its archiving failed or was behind. */
  ready: ReadonlySet<string>;
}

export interface UnarchivedWalQuery {
  segmentSize: number;
  systemIdentifier: string;
  /** The chosen backup's start: WAL before it is no restore's concern. */
  from: Lsn;
  /** The archive's file names. */
  archived: ReadonlySet<string>;
  /**
   * The backup's file paths: its pg_wal/ segments (a backup holding its WAL) are restored over the
   * old cluster's, which hold nothing more unless written past the backup's stop (`backupStop`):
   * a backup from a standby, whose primary went on writing into the stop segment.
   */
  inBackup: ReadonlySet<string>;
  backupStop: Lsn;
}

/** The delta's WAL directories looked into (those of the old cluster in `pgData`), judged for the plan (judgeUnarchivedWal). */
export function checkUnarchivedWal(pgData: string, dirs: string[], q: UnarchivedWalQuery & { branch: TimelineBranch; target: RecoveryTarget; standby: boolean; stanza: string; archiveEnd: string; log(line: string): void }): void {
  const found = dirs
    .map((d) => unarchivedWalIn(d, q))
    .filter((f) => f !== null)
    .map((f) => ({ ...f, names: f.names.filter((n) => f.ready.has(n) || !holdsOnlyShutdownCheckpoint(pgData, join(f.dir, n), n, q.segmentSize, crc32c)) }))
    .filter((f) => f.names.length > 0);
  const spans = branchSpans(q.branch, q.segmentSize);
  // The branch's timeline by number only when the old cluster's own history file for it (beside
  // the segments) says the same forks: a copy promoted elsewhere may have taken the same number.
  const foreign = new Set(found.filter((f) => otherHistory(f.dir, q.branch)).map((f) => f.dir));
  const ofForeign = (name: string, dir: string) => foreign.has(dir) && parseInt(name.slice(0, 8), 16) === q.branch.timeline;
  const onBranch = (name: string, dir: string): boolean => {
    const seg = parseSegmentFileName(name, q.segmentSize);
    return seg !== null && timelineOfSegment(spans, seg.segNo) === seg.timeline && !ofForeign(name, dir);
  };
  // Another history's WAL is never this stanza's to archive, marked or not.
  judgeUnarchivedWal(found.map((f) => ({ ...f, ready: new Set([...f.ready].filter((n) => !ofForeign(n, f.dir))) })), onBranch, { ...q, oldStandby: wasStandby(pgData) });
}

/** Whether the old cluster was in recovery when it stopped (a standby, or a recovery not ended): the WAL in its pg_wal came from another server, or the archive. */
function wasStandby(pgData: string): boolean {
  const state = controlCheckpoint(pgData)?.state;
  return state === DB_SHUTDOWNED_IN_RECOVERY || state === DB_IN_ARCHIVE_RECOVERY || existsSync(join(pgData, STANDBY_SIGNAL_FILE));
}

/** The segments in `dir` (a WAL directory, when it is one) written for this system at or after `from` that the archive lacks. */
export function unarchivedWalIn(dir: string, q: UnarchivedWalQuery): UnarchivedWal | null {
  let entries: string[];
  try {
    if (!lstatSync(dir).isDirectory()) return null;
    entries = readdirSync(dir);
  } catch {
    return null;
  }
  const names: string[] = [];
  for (const name of entries.sort()) {
    const seg = /^[0-9A-F]{24}$/.test(name) ? parseSegmentFileName(name, q.segmentSize) : null;
    if (seg === null || q.archived.has(name)) continue;
    if (segmentStart(seg.segNo + 1n, q.segmentSize) <= q.from) continue;
    if (q.inBackup.has(`pg_wal/${name}`) && !walPastStop(join(dir, name), segmentStart(seg.segNo, q.segmentSize), q)) continue;
    if (holdsOwnWal(join(dir, name), name, q)) names.push(name);
  }
  if (names.length === 0) return null;
  let marked: string[] = [];
  try {
    marked = readdirSync(join(dir, 'archive_status'));
  } catch {
    /* none */
  }
  // A timeline whose history file the server marked for archiving (a promotion whose archiving
  // failed): all its segments, the one being written too (never marked itself).
  const readyTimelines = new Set(marked.map((m) => /^([0-9A-F]{8})\.history\.ready$/.exec(m)?.[1]).filter((t) => t !== undefined));
  return { dir, names, ready: new Set(names.filter((n) => marked.includes(`${n}.ready`) || readyTimelines.has(n.slice(0, 8)))) };
}

/**
 * Whether the old cluster's copy of a segment the backup holds has WAL past the backup's stop (the
 * backup's copy ends there): a record beginning at or after the stop other than the WAL switch a
 * primary's backup stop writes, or WAL running on into the next segment. A segment the stop is past
 * is the backup's whole; one that cannot be read holds nothing judged here.
 */
function walPastStop(path: string, start: Lsn, q: UnarchivedWalQuery): boolean {
  if (q.backupStop >= start + BigInt(q.segmentSize)) return false;
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    return false;
  }
  if (data.length !== q.segmentSize) return false;
  // Each whole record from the stop on: whether it is a WAL switch (its header read whole, also
  // where it crosses a page).
  const after: boolean[] = [];
  const stop = Number(q.backupStop);
  const scan = new WalRecordScanner({ crc32c, onRestorePoint: () => undefined, onRecord: (lsn, _end, rmid, info) => void (lsn >= stop && after.push(rmid === RM_XLOG_ID && (info & 0xf0) === XLOG_SWITCH)) }).segment(start, data);
  if (after.some((isSwitch) => !isSwitch)) return true;
  return scan === 'next' && after.length === 0;
}

/** Whether the file's first page is this system's, written for this name (a recycled segment keeps an older one's header). */
function holdsOwnWal(path: string, name: string, q: UnarchivedWalQuery): boolean {
  const buf = walFileHead(path);
  if (buf === null || buf.length < WAL_LONG_HEADER_SIZE) return false;
  const h = parseWalLongPageHeader(buf);
  return h !== null && h.systemIdentifier === q.systemIdentifier && h.segmentSize === q.segmentSize && segmentNameMismatch(name, h, q.segmentSize) === null;
}

/**
 * Refuses recovery to the end of the archive over unarchived WAL of the branch it follows (`onBranch`:
 * the segment is the one replay reads there), or that the server marked for archiving (a promoted
 * standby whose archive_command failed: its new timeline's WAL, the only copy); says what goes
 * otherwise: with a target, or for a standby, or WAL of another timeline never meant for the
 * archive (a copy's own, promoted with archiving off).
 */
export function judgeUnarchivedWal(found: UnarchivedWal[], onBranch: (name: string, dir: string) => boolean, o: { target: RecoveryTarget; standby: boolean; oldStandby?: boolean; stanza: string; archiveEnd: string; log(line: string): void }): void {
  const list = (fs: UnarchivedWal[]) => fs.map((f) => `${f.names.length === 1 ? f.names[0] : `${f.names[0]} to ${f.names[f.names.length - 1]} (${f.names.length} segments)`} in ${f.dir}`).join(', ');
  const branch = found.map((f) => ({ dir: f.dir, names: f.names.filter((n) => onBranch(n, f.dir) || f.ready.has(n)), ready: f.ready })).filter((f) => f.names.length > 0);
  if (branch.length > 0 && o.target.kind === 'end' && !o.standby) {
    throw new PgpitrError('ERR_TARGET', `the cluster being replaced holds WAL the archive does not: ${list(branch)}; a delta restore removes it, and recovery to the end of the archive (${o.archiveEnd}) would end before it, losing the transactions it holds`, {
      hint: `archive it first, oldest first, with the timeline history files marked .ready in archive_status, as the server's user (pgpitr archive-push --stanza ${o.stanza} ... ${branch[0]!.dir}/${branch[0]!.names[0]}, and so on), then run the restore again; to recover without it, move it out of the way or give a recovery target`,
    });
  }
  if (found.length === 0) return;
  // A target lies in the archive (the plan and the reach checks refuse one past it): this WAL is past it.
  const said = `warning: WAL the archive does not hold goes with the old cluster: ${list(found)}; recovery does not read it`;
  if (o.oldStandby) {
    // What it marked for archiving itself (archive_mode always, a promotion cut short) may be the only copy.
    const marked = found.map((f) => ({ ...f, names: f.names.filter((n) => f.ready.has(n)) })).filter((f) => f.names.length > 0);
    o.log(
      `${said}; the old cluster was in recovery (a standby): that WAL came from its primary, which archives it while it runs (then do not archive-push it from here: the last segment, received in part, would conflict with the primary's own); if the primary is lost, the complete segments there may be the only copy: archive those first with pgpitr archive-push, never the last one` +
        (marked.length > 0 ? `; ${list(marked)} it marked for archiving itself: archive ${marked.length === 1 && marked[0]!.names.length === 1 ? 'it' : 'them'} first` : ''),
    );
    return;
  }
  const others = found.map((f) => ({ ...f, names: f.names.filter((n) => !branch.some((b) => b.dir === f.dir && b.names.includes(n))) })).filter((f) => f.names.length > 0);
  const foreign = others.length === 0 ? '' : `${branch.length > 0 ? `; ${list(others)} is` : '; it is'} WAL of a timeline this restore does not follow (a copy promoted on its own, or a branch left behind): never archive it into this stanza`;
  const keep = branch.length === 0 ? '' : `; no later restore could read ${others.length > 0 ? list(branch) : 'it'} either: to keep it, archive it first with pgpitr archive-push (its timeline then reads as going on past the fork, and restores that follow the latest timeline refuse until the new timeline archives its next segment)`;
  o.log(`${said}${keep}${foreign} (--dry-run says this before anything is removed)`);
}

/** Whether `dir` holds a history file of the branch's timeline that names other forks than the archive's. */
function otherHistory(dir: string, branch: TimelineBranch): boolean {
  if (branch.ancestors.length === 0) return false;
  let text: string;
  try {
    text = readFileSync(join(dir, timelineHistoryFileName(branch.timeline)), 'utf8');
  } catch {
    return false;
  }
  try {
    const own = parseTimelineHistory(text);
    return own.length !== branch.ancestors.length || own.some((s, i) => s.timeline !== branch.ancestors[i]!.timeline || s.switchpoint !== branch.ancestors[i]!.switchpoint);
  } catch {
    return true;
  }
}
