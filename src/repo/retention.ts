// Retention, as a pure decision: which backups a policy keeps, and from which
// WAL segment on the archive must stay. `expire` carries it out; the rules are
// here so that they are tested on fixed, made-up times.
//
// - retention-full N: the N newest complete full backups are kept, and every
//   complete backup newer than the oldest of them (their diffs and incrs).
// - retention-window D: every point in the last D stays restorable, so every
//   complete backup that ended within the window is kept, and so is the newest
//   one that ended before it (the window's first moments are recovered from it),
//   and the newest before it on the newest timeline's history when that one
//   is of a branch a restore to an earlier point left behind.
// - Whatever the policy, the newest complete backup stays, and so does the newest one on the
//   newest timeline's history (after a restore to an earlier point, the backups taken since
//   on the branch left behind cannot reach the new timeline).
// - Both given: a backup either rule keeps is kept.
// - A kept diff or incr keeps every backup it takes files from (and the one it
//   was compared with): it cannot be restored without them. A full backup's
//   diffs and incrs thus go with it, never before it.
// - Pinned backups are always kept; so are backups being restored (restore-lease.ts), backups still running, and those
//   whose record cannot be parsed (they may be complete backups; no WAL is
//   removed while one is there). A backup pinned "standalone" (an archival
//   backup: the month's, the year's) keeps only the WAL from its start to its
//   stop, what makes it consistent, not every segment after it; the backups it
//   takes files from are kept for their files, with their own range too. expire
//   --set, which knows no policy, leaves every backup the WAL after it.
// - Failed or interrupted backups are removed once a complete backup newer
//   than them exists (they can never be restored).
// - WAL: every segment older than the oldest kept complete backup's start is
//   removed (on every timeline), but for the ranges standalone backups keep;
//   history files are always kept. Without any complete backup, no WAL is removed.

import { PgpitrError } from '../common/errors.js';

export interface RetentionBackup {
  id: string;
  state: 'complete' | 'running' | 'failed';
  stopTimeMs: number;
  /** Segment number (not name) of the backup's start LSN. */
  startSegNo: bigint;
  pinned: boolean;
  /**
   * Whether points of the archive's newest timeline can be recovered from it (its timeline is on
   * that timeline's history, and had not ended before the backup's end); absent: not known
   * (nothing archived, or the backup's timeline or stop not recorded), taken as yes.
   */
  onLatestBranch?: boolean | undefined;
  /** Its record cannot be parsed: what it is is not known, so it is kept (never counted as a backup). */
  damaged?: boolean | undefined;
  /** Absent: full. */
  type?: 'full' | 'diff' | 'incr' | undefined;
  /** The backups it needs besides itself (its references and its prior backup); absent: none. */
  needs?: string[] | undefined;
  /** What its pin keeps (absent: 'full', the WAL after it too); only read when pinned. */
  pinTarget?: PinTarget | undefined;
  /** Segment number of its stop LSN (absent: not known; a standalone pin then keeps the WAL after it, as 'full'). */
  stopSegNo?: bigint | undefined;
  /** A restore holds a lease on it (restore-lease.ts): who. Kept, with the WAL after it, like a pinned backup. */
  restoring?: string | undefined;
  /** Why it cannot be restored (stored files missing, its manifest unreadable), when expire looked; absent: restorable or not looked at. */
  unrestorable?: string | undefined;
}

/**
 * What a pinned backup keeps besides itself: 'full', the WAL from its start on (it can be
 * recovered to any later point); 'standalone', only the WAL from its start to its stop (it can be
 * restored to its end, --target-immediate, and no further: an archival backup).
 */
export type PinTarget = 'full' | 'standalone';

/** WAL kept below walKeepFromSegNo for a standalone backup: its start's segment to its stop's, both kept. */
export interface WalKeptRange {
  id: string;
  fromSegNo: bigint;
  toSegNo: bigint;
}

export interface RetentionPolicy {
  full?: number | undefined;
  windowMs?: number | undefined;
}

export interface RetentionDecision {
  keep: { id: string; why: string }[];
  expire: { id: string; why: string }[];
  /** WAL segments with a smaller segment number may be removed; null: keep all WAL. */
  walKeepFromSegNo: bigint | null;
  /** Which backup keeps the WAL from there (or all of it), and why it is kept: said by expire. */
  walKeptFor?: { id: string; why: string } | undefined;
  /** Below walKeepFromSegNo, the segments backups kept without the WAL after them keep (their own range). */
  walKeepRanges: WalKeptRange[];
}

/** A backup that ended more than this after now is dated ahead (a clock that ran ahead): not counted by a policy. */
export const DATED_AHEAD_SLACK_MS = 60_000;

export function decideRetention(backups: RetentionBackup[], policy: RetentionPolicy, nowMs: number): RetentionDecision {
  if (policy.full === undefined && policy.windowMs === undefined) throw new Error('a retention policy needs a count or a window');
  const newestFirst = [...backups].sort((a, b) => b.stopTimeMs - a.stopTimeMs);
  const ahead = (b: RetentionBackup) => b.stopTimeMs > nowMs + DATED_AHEAD_SLACK_MS;
  // Ordered by time, a backup dated ahead would stay "the newest" and the backups taken now be
  // expired as they complete: it is kept, and the policy counts the others.
  const complete = newestFirst.filter((b) => b.state === 'complete' && !ahead(b));
  const keepWhy = new Map<string, string>();
  // Kept with the WAL after them (any point since can be recovered); the others are kept by a
  // standalone pin alone, or for their files: their WAL is what standaloneRanges says.
  const withWal = new Set<string>();
  const keep = (b: RetentionBackup, why: string, wal = true) => {
    if (!keepWhy.has(b.id) || (wal && !withWal.has(b.id))) keepWhy.set(b.id, why);
    if (wal) withWal.add(b.id);
  };
  for (const b of newestFirst) {
    if (b.state === 'complete' && ahead(b)) keep(b, "dated after this host's clock (a clock that ran ahead when it was taken): not counted by the policy; remove it with pgpitr expire --set if its times are wrong");
    if (b.pinned) {
      if (standalonePin(b)) keep(b, 'pinned standalone: kept with the WAL that makes it consistent, not the WAL after it', false);
      else keep(b, 'pinned');
    }
    if (b.restoring !== undefined) keep(b, `being restored: ${b.restoring}`);
    if (b.damaged) keep(b, `its record is damaged: kept until looked at (pgpitr verify), then removed with pgpitr expire --set=${b.id}`);
    if (b.state === 'running') keep(b, 'still running');
  }
  if (policy.full !== undefined) {
    const fulls = complete.filter((b) => (b.type ?? 'full') === 'full').slice(0, policy.full);
    fulls.forEach((b, i) => keep(b, `one of the ${policy.full} newest complete full backups (#${i + 1})`));
    const oldest = fulls[fulls.length - 1];
    if (oldest) for (const b of complete) if (b.stopTimeMs > oldest.stopTimeMs && (b.type ?? 'full') !== 'full') keep(b, `${b.type === 'incr' ? 'an' : 'a'} ${b.type} backup newer than the oldest full backup kept`);
  }
  if (policy.windowMs !== undefined) {
    const start = nowMs - policy.windowMs;
    for (const b of complete) if (b.stopTimeMs >= start) keep(b, 'ended within the retention window');
    const before = complete.find((b) => b.stopTimeMs < start);
    if (before) keep(before, 'newest backup before the retention window: recovers its first moments');
    // After a restore to an earlier point, the newest backup before the window may be of the
    // branch left behind: the window's moments on the newest timeline need one of its own history.
    const beforeOnBranch = complete.find((b) => b.stopTimeMs < start && b.onLatestBranch !== false);
    if (beforeOnBranch) keep(beforeOnBranch, "newest backup before the retention window on the newest timeline's history: recovers its first moments there");
  }
  // Whatever the policy, the newest complete backup stays (a policy by count finds no full backup
  // to keep when the only one's record is damaged).
  if (complete[0]) keep(complete[0], 'the newest complete backup');
  // After a restore to an earlier point, until a backup of the new timeline completes, the
  // newest backup it can be restored from may be older than every backup the policy keeps.
  const newestOnBranch = complete.find((b) => b.onLatestBranch !== false);
  if (newestOnBranch) keep(newestOnBranch, "the newest complete backup the newest timeline's history can be restored from");
  // Newer backups that cannot be restored (their stored files gone) count for the policy, and must
  // not leave the stanza without one that can: the newest that can stays, with the WAL after it.
  const newestRestorable = complete.find((b) => b.onLatestBranch !== false && b.unrestorable === undefined);
  if (newestRestorable && complete.some((b) => b.unrestorable !== undefined)) keep(newestRestorable, 'the newest complete backup that can be restored (newer ones cannot)');
  keepNeeds(backups, keepWhy, withWal);
  // A backup kept without the WAL after it (a standalone pin, or what a standalone incr takes
  // files from) keeps its own range, so that it can still be restored; where its stop is not
  // known, the WAL after it.
  for (const b of backups) if (keepWhy.has(b.id) && !withWal.has(b.id) && b.state === 'complete' && (b.damaged || b.stopSegNo === undefined)) withWal.add(b.id);
  const newestComplete = complete[0];
  const decision: RetentionDecision = { keep: [], expire: [], walKeepFromSegNo: null, walKeepRanges: [] };
  for (const b of newestFirst) {
    const why = keepWhy.get(b.id);
    if (why !== undefined) decision.keep.push({ id: b.id, why: b.unrestorable === undefined ? why : `${why}; it cannot be restored: ${b.unrestorable}` });
    else if (b.state === 'failed') {
      if (newestComplete && newestComplete.stopTimeMs > b.stopTimeMs) decision.expire.push({ id: b.id, why: 'failed or interrupted, and a newer complete backup exists' });
      else decision.keep.push({ id: b.id, why: 'failed or interrupted, but no newer complete backup exists yet' });
    } else decision.expire.push({ id: b.id, why: 'outside the retention policy' });
  }
  decision.walKeepFromSegNo = walKeepFrom(backups, (b) => keepWhy.has(b.id), (b) => withWal.has(b.id), nowMs);
  decision.walKeptFor = walKeptFor(backups, keepWhy, withWal, nowMs);
  decision.walKeepRanges = standaloneRanges(backups, (b) => keepWhy.has(b.id) && !withWal.has(b.id), decision.walKeepFromSegNo);
  return decision;
}

/** A pin that keeps the backup's own WAL only (its stop known: otherwise the pin keeps the WAL after it too). */
function standalonePin(b: RetentionBackup): boolean {
  return b.pinned && b.pinTarget === 'standalone' && b.stopSegNo !== undefined && b.state === 'complete' && !b.damaged;
}

/**
 * What kept backups need is kept too, transitively (a need of a need: an incr of an incr). What
 * a backup kept with its WAL needs keeps its WAL too (as it always has); what a standalone
 * backup needs is kept for its files.
 */
function keepNeeds(backups: RetentionBackup[], keepWhy: Map<string, string>, withWal: Set<string>): void {
  const byId = new Map(backups.map((b) => [b.id, b]));
  for (const wal of [true, false]) {
    const queue = [...keepWhy.keys()].filter((id) => withWal.has(id) === wal);
    while (queue.length > 0) {
      const b = byId.get(queue.pop()!);
      for (const id of b?.needs ?? []) {
        const needed = byId.get(id);
        if (!needed || (wal ? withWal.has(id) : keepWhy.has(id))) continue;
        if (!keepWhy.has(id) || wal) keepWhy.set(id, `backup ${b!.id} takes files from it`);
        if (wal) withWal.add(id);
        queue.push(id);
      }
    }
  }
}

/** The WAL each complete backup kept without the WAL after it needs below `keepFrom` (null: all WAL is kept, no range needed). */
function standaloneRanges(backups: RetentionBackup[], standaloneOnly: (b: RetentionBackup) => boolean, keepFrom: bigint | null): WalKeptRange[] {
  if (keepFrom === null) return [];
  return backups
    .filter((b) => standaloneOnly(b) && b.state === 'complete' && b.stopSegNo !== undefined && b.startSegNo < keepFrom)
    .map((b) => ({ id: b.id, fromSegNo: b.startSegNo, toSegNo: b.stopSegNo! }))
    .sort((a, b) => (a.fromSegNo < b.fromSegNo ? -1 : a.fromSegNo > b.fromSegNo ? 1 : 0));
}

/** The backup whose start (or damaged record) decides walKeepFrom, with the reason it is kept. */
/**
 * A running backup (met only where expire runs beside one: a dry run, or a store whose lock cannot
 * be enforced) has no start recorded until it completes: all WAL is kept for it, RUNNING_WAL_HOLD_MS
 * after its start at most (a dead run of another host, which cannot be looked at, reads as running
 * for ever there).
 */
const RUNNING_WAL_HOLD_MS = 24 * 3600_000;
const holdsAllWal = (b: RetentionBackup, nowMs: number): boolean => b.state === 'running' && nowMs - b.stopTimeMs < RUNNING_WAL_HOLD_MS;

function walKeptFor(backups: RetentionBackup[], keepWhy: Map<string, string>, withWal: Set<string>, nowMs: number): RetentionDecision['walKeptFor'] {
  const damaged = backups.find((b) => b.damaged && keepWhy.has(b.id));
  if (damaged) return { id: damaged.id, why: 'its record is damaged: where its WAL starts is not known, so no WAL is removed (pgpitr verify names it)' };
  const running = backups.find((b) => holdsAllWal(b, nowMs) && keepWhy.has(b.id));
  if (running) {
    const until = new Date(running.stopTimeMs + RUNNING_WAL_HOLD_MS).toISOString();
    return { id: running.id, why: `still running (or its process, on another host, cannot be looked at): where its WAL starts is not recorded until it completes, so no WAL is removed before it does, or ${until} at the latest` };
  }
  const oldest = backups.filter((b) => b.state === 'complete' && withWal.has(b.id)).sort((a, b) => (a.startSegNo < b.startSegNo ? -1 : a.startSegNo > b.startSegNo ? 1 : 0))[0];
  return oldest ? { id: oldest.id, why: keepWhy.get(oldest.id)! } : undefined;
}

/** The first segment the kept complete backups need from there on (null: keep all WAL). */
function walKeepFrom(backups: RetentionBackup[], kept: (b: RetentionBackup) => boolean, withWal: (b: RetentionBackup) => boolean, nowMs: number): bigint | null {
  // Where a backup whose record is damaged starts is not known: its WAL is all kept with it.
  if (backups.some((b) => b.damaged && kept(b))) return null;
  // Nor where a running backup's starts (holdsAllWal).
  if (backups.some((b) => holdsAllWal(b, nowMs) && kept(b))) return null;
  const keptComplete = backups.filter((b) => b.state === 'complete' && kept(b) && withWal(b));
  if (keptComplete.length === 0) return null;
  return keptComplete.reduce((m, b) => (b.startSegNo < m ? b.startSegNo : m), keptComplete[0]!.startSegNo);
}

/**
 * expire --set ID: that backup and every backup taking files from it (directly or through
 * another), whatever the policy, and the WAL no kept complete backup needs any more. Refused when
 * one of them is pinned or still running, or when it would leave no complete full backup where
 * there is one, or none the newest timeline can be restored from (when its history is known).
 */
export function decideSetExpiry(backups: RetentionBackup[], id: string, stanza: string, nowMs = Date.now()): RetentionDecision {
  const target = backups.find((b) => b.id === id);
  if (!target) throw new PgpitrError('ERR_NOT_FOUND', `backup "${id}" does not exist in stanza "${stanza}"`, { hint: 'pgpitr info lists the backups' });
  const doomed = new Map<string, string>([[id, 'asked for (--set)']]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const b of backups) {
      // A backup whose record is damaged is not taken along (what it needs may only be guessed): see below.
      const from = doomed.has(b.id) || b.damaged ? undefined : (b.needs ?? []).find((n) => doomed.has(n));
      if (from !== undefined) {
        doomed.set(b.id, `takes files from backup ${from}`);
        grew = true;
      }
    }
  }
  for (const b of backups) {
    if (!doomed.has(b.id)) continue;
    const also = b.id === id ? '' : ` (it takes files from backup ${id}, and goes with it)`;
    if (b.pinned) throw new PgpitrError('ERR_TARGET', `backup ${b.id} is pinned${also}`, { hint: `unpin it first: pgpitr expire --unpin=${b.id}` });
    if (b.state === 'running') throw new PgpitrError('ERR_TARGET', `backup ${b.id} is still running${also}`, { hint: 'wait for it to end, or stop it' });
    if (b.restoring !== undefined) throw new PgpitrError('ERR_TARGET', `backup ${b.id} is being restored${also}: ${b.restoring}`, { hint: "run expire --set again once that restore and its recovery have ended (a restore that ended holds its backup for a day: a directory expire cannot see, moved, removed or on a volume not mounted, tells it nothing); for a restore whose directory will never be started, remove its lease object (the stanza's restore-lease/<backup id>-*.json naming that directory) by hand" });
  }
  const unsure = backups.find((b) => b.damaged && !doomed.has(b.id) && (b.needs ?? []).some((n) => doomed.has(n)));
  if (unsure) {
    throw new PgpitrError('ERR_TARGET', `backup ${unsure.id}, whose record is damaged, may take files from the backups expiring backup ${id} would remove`, {
      hint: `look at it first (pgpitr verify); expire it with --set=${unsure.id} once it is not wanted`,
    });
  }
  const fulls = backups.filter((b) => b.state === 'complete' && !b.damaged && (b.type ?? 'full') === 'full');
  if (fulls.length > 0 && fulls.every((b) => doomed.has(b.id))) {
    throw new PgpitrError('ERR_TARGET', `expiring backup ${id} would leave stanza "${stanza}" without a complete full backup`, {
      hint: 'take a new full backup first (pgpitr backup --type=full), or remove the whole stanza (pgpitr stanza-delete)',
    });
  }
  // The newest timeline's history known (some backup off it): its backups all going while others
  // stay (of a branch it left behind) would leave the cluster now running with none to restore.
  const onBranch = backups.filter((b) => b.state === 'complete' && !b.damaged && b.onLatestBranch !== false);
  const leftBehind = backups.filter((b) => b.state === 'complete' && !b.damaged && b.onLatestBranch === false && !doomed.has(b.id));
  if (onBranch.length > 0 && onBranch.every((b) => doomed.has(b.id)) && leftBehind.length > 0) {
    throw new PgpitrError('ERR_TARGET', `expiring backup ${id} would leave stanza "${stanza}" without a backup its newest timeline can be restored from: ${leftBehind.map((b) => b.id).join(', ')} ${leftBehind.length > 1 ? 'are' : 'is'} on a branch that timeline left behind`, {
      hint: `take a new backup first (pgpitr backup), then expire ${id}`,
    });
  }
  const newestFirst = [...backups].sort((a, b) => b.stopTimeMs - a.stopTimeMs);
  const decision: RetentionDecision = { keep: [], expire: [], walKeepFromSegNo: null, walKeepRanges: [] };
  for (const b of newestFirst) {
    const why = doomed.get(b.id);
    if (why !== undefined) decision.expire.push({ id: b.id, why });
    else decision.keep.push({ id: b.id, why: 'not asked for' });
  }
  // Every backup left keeps the WAL after it, standalone ones too: --set knows neither the policy
  // nor the newest timeline's branch, which may need the WAL after one of them (only a policy's
  // expire leaves a standalone backup its own range alone).
  decision.walKeepFromSegNo = walKeepFrom(backups, (b) => !doomed.has(b.id), () => true, nowMs);
  return decision;
}

/** "7d", "12h", "30m", "2w": a duration in milliseconds; `what` names the setting in the error. */
export function parseRetentionWindow(text: string, what = 'retention window'): number {
  const m = /^(\d+)\s*(m|h|d|w)$/.exec(text.trim());
  if (!m) throw new Error(`invalid ${what} "${text}": give a number and a unit, m, h, d or w (e.g. 7d)`);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}
