// check's last question, once the segment it switched to is archived: could a
// restore bring the cluster back to now? Yes when a recovery window
// (restore/recovery-window.ts, the rules restore itself follows) runs from a
// restorable backup to that segment on the server's timeline, and restore's
// defaults reach it: a timeline in the archive that leaves a restorable backup
// behind (a restored copy promoted with the same archive_command) fails it, and so does
// restore's doubt that the latest timeline is this cluster's present (restore/latest-timeline.ts:
// restore refuses then without --target-timeline). A stanza with
// no backup yet passes with a warning (check runs before the first backup),
// unless --backup-age-max asks for one; with --backup-age-max, the newest
// restorable backup must also have ended within that time.

import { isPgpitrError } from '../common/errors.js';
import { listArchive } from '../repo/archive-store.js';
import type { ArchivedFile } from '../repo/archive-store.js';
import { listRecords } from '../repo/backup-set/record.js';
import type { BackupRecord } from '../repo/backup-set/record.js';
import type { Repository } from '../repo/repository.js';
import { stanzaReach } from './stanza-reach.js';
import type { RecoveryWindow } from '../restore/recovery-window.js';
import type { Finding } from './check-finding.js';
import { errorFinding } from './check-finding.js';
import type { DropRecord } from '../repo/drops.js';
import { continuityFinding } from './check-continuity.js';
import { readExpiredHoles } from '../repo/expired-holes.js';

export interface RecoveryCheck {
  repo: Repository;
  stanza: string;
  segmentSize: number;
  /** The archive as listed once the segment arrived. */
  files: ArchivedFile[];
  /** What asynchronous archive-push recorded dropping (said beside a gap it explains). */
  drops: DropRecord[];
  /** The segment check switched to, now archived (or, without a switch, the last the server archived: `switched` false). */
  wal: string;
  switched?: boolean;
  backupAgeMaxMs?: number | undefined;
  nowMs: number;
  /** How the backup command a hint gives names the repository (` --repo 2` when there are several). */
  repoArg?: string;
}

export async function recoveryFindings(c: RecoveryCheck): Promise<Finding[]> {
  const records = await listRecords(c.repo.storage, c.stanza);
  const reach = await stanzaReach(c.repo, c.stanza, c.segmentSize, c.files, records);
  // The window a restore reaches the segment judged by, if any. One restore's defaults reach makes the
  // archive's gaps older points lost, not the present.
  const now = reach.windows.find((w) => w.to.segment.slice(0, 8) === c.wal.slice(0, 8) && w.to.segment >= c.wal);
  const continuity = continuityFinding(c.files, c.drops, c.segmentSize, reach.timelineGaps, c.wal, await readExpiredHoles(c.repo, c.stanza).catch(() => []), now && now.needs === null ? now.from.backup : null);
  return [continuity, ...recoveryOf(c, records, reach, now)];
}

function recoveryOf(c: RecoveryCheck, records: BackupRecord[], reach: Awaited<ReturnType<typeof stanzaReach>>, now: RecoveryWindow | undefined): Finding[] {
  const take = `take one: pgpitr backup${c.repoArg ?? ''} --stanza ${c.stanza}`;
  if (!records.some((r) => r.state === 'complete')) {
    const wanted = c.backupAgeMaxMs !== undefined;
    const none: Finding = { check: 'recovery', ok: !wanted, message: `${wanted ? '' : 'warning: '}the stanza has no complete backup yet: nothing can be restored`, hint: take };
    return wanted ? [none, backupAgeFinding(c.stanza, records, reach, c.nowMs, c.backupAgeMaxMs!, c.repoArg)] : [none];
  }
  const stopOf = (id: string) => records.find((r) => r.id === id)?.stop_time ?? '?';
  const out: Finding[] = [];
  for (const n of reach.conflicting) out.push({ check: 'archive continuity', ok: false, message: `WAL file ${n} is stored twice with different content: archive-get refuses it, so recovery stops there`, hint: 'two clusters archive into this stanza (a copy promoted with the same archive_command?): give each its own stanza; pgpitr verify names the copies, remove the foreign one' });
  for (const u of reach.unreadable) out.push({ check: 'history files', ok: false, message: `timeline history file ${u}`, hint: 'a restore along that timeline needs it: pgpitr verify checks the archive; archive it again from the server\'s pg_wal if it is still there' });
  // Restore's defaults refuse the latest timeline (they would follow a copy's): a restore now needs an option.
  // One the newest timeline's next archived segment ends (an old primary's last segments after a failover): a warning.
  const doubt = reach.latestDoubt;
  if (doubt) out.push({ check: 'recovery', ok: doubt.transient, message: `${doubt.transient ? 'warning: ' : ''}restore with its defaults (no --set, the latest timeline) refuses${doubt.transient ? ' for now' : ''}: ${doubt.message}`, hint: doubt.hint ?? 'give --target-timeline' });
  const behind = reach.windows.find((w) => w.needs !== null);
  const behindHint =
    'if the cluster was rolled back by a point-in-time restore, those backups are of the abandoned timeline: restore with --set until expire removes them; ' +
    'if a restored copy was promoted with this stanza\'s archive_command, give it its own stanza; meanwhile restore with --target-timeline current, or --set';
  if (now?.needs) {
    // The server's own timeline is the one left behind: a restore with the defaults follows another.
    out.push({
      check: 'recovery',
      ok: false,
      message: `restore with its defaults (the latest timeline) cannot recover past backup ${now.to.backup}, which only ${now.needs.option} reaches: ${now.needs.why}`,
      hint: behindHint,
    });
  } else if (now) {
    if (behind) out.push({ check: 'recovery', ok: true, message: `warning: restore without --set refuses targets past backup ${behind.to.backup}, which only ${behind.needs!.option} reaches: ${behind.needs!.why}`, hint: behindHint });
    out.push({ check: 'recovery', ok: true, message: `a restore can reach WAL segment ${c.wal}, ${c.switched === false ? 'the last archived' : 'just archived'}: from backup ${now.to.backup} (ended ${stopOf(now.to.backup)}); recoverable from ${now.from.time}` });
  } else {
    const newest = [...records].reverse().find((r) => r.state === 'complete')!;
    const problem = reach.problems.get(newest.id);
    const last = reach.windows[reach.windows.length - 1];
    out.push({
      check: 'recovery',
      ok: false,
      message:
        `no backup can be restored to the present (WAL segment ${c.wal}): ` +
        (last ? `the recovery window ends at segment ${last.to.segment} on timeline ${last.to.timeline}` : 'no complete backup can be restored') +
        (problem ? `; the newest backup, ${newest.id}, cannot be restored: ${problem}` : ''),
      hint: 'take a backup now (pgpitr backup); pgpitr info shows what each backup lacks, pgpitr verify checks the rest',
    });
  }
  if (c.backupAgeMaxMs !== undefined) out.push(backupAgeFinding(c.stanza, records, reach, c.nowMs, c.backupAgeMaxMs, c.repoArg));
  return out;
}

/** --backup-age-max: the newest restorable backup ended within it (data: the figures, for monitoring). */
function backupAgeFinding(stanza: string, records: BackupRecord[], reach: Awaited<ReturnType<typeof stanzaReach>>, nowMs: number, maxMs: number, repoArg = ''): Finding {
  const restorable = records.filter((r) => reach.problems.get(r.id) === null && r.stop_time);
  const newest = restorable.reduce<(typeof restorable)[number] | null>((a, r) => (a === null || Date.parse(r.stop_time!) > Date.parse(a.stop_time!) ? r : a), null);
  const ageMs = newest ? nowMs - Date.parse(newest.stop_time!) : Infinity;
  const ok = ageMs <= maxMs;
  return {
    check: 'backup age',
    ok,
    message: newest ? `the newest restorable backup, ${newest.id}, ended ${newest.stop_time} (${hours(ageMs)} ago; at most ${hours(maxMs)} asked)` : 'no backup can be restored',
    data: { backup: newest?.id ?? null, stop_time: newest?.stop_time ?? null, age_seconds: newest ? Math.round(ageMs / 1000) : null, max_age_seconds: Math.round(maxMs / 1000) },
    ...(ok ? {} : { hint: `take one: pgpitr backup${repoArg} --stanza ${stanza}; and check that scheduled backups run (their log, pgpitr info for failed ones)` }),
  };
}

/** The backup age alone, for a repository whose archiving could not be judged (the segment did not reach it). */
export async function backupAgeOnly(repo: Repository, stanza: string, segmentSize: number, nowMs: number, maxMs: number, repoArg = ''): Promise<Finding> {
  try {
    const records = await listRecords(repo.storage, stanza);
    const reach = await stanzaReach(repo, stanza, segmentSize, await listArchive(repo, stanza), records);
    return backupAgeFinding(stanza, records, reach, nowMs, maxMs, repoArg);
  } catch (e) {
    if (isPgpitrError(e) && e.code === 'ERR_INTERRUPTED') throw e;
    return errorFinding('backup age', e);
  }
}

function hours(ms: number): string {
  return ms < 600_000 ? `${Math.round(ms / 1000)} s` : ms < 3_600_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`;
}
