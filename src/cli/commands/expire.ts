// `pgpitr expire`: retention of a stanza's backups and WAL
// (repo/retention.ts decides, repo/expire.ts carries it out), and `--pin` /
// `--unpin` to keep a backup whatever the policy says.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import type { RepoOptions } from '../repo-options.js';
import { PgpitrError, usageError } from '../../common/errors.js';
import { openEachRepository } from '../../repo/open-repository.js';
import type { RepoSettings } from '../../repo/repo-settings.js';
import { onEachRepository, throwFirstFailure } from '../each-repository.js';
import type { RepositoryOutcome } from '../each-repository.js';
import type { ExpireResult } from '../../repo/expire.js';
import { isPgpitrError } from '../../common/errors.js';
import { parseRetentionWindow } from '../../repo/retention.js';
import type { RetentionPolicy } from '../../repo/retention.js';
import { expireUnderLock, setPinned } from '../../commands/expire.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';
import { unrecordedKept, unrecordedSet } from '../../repo/backup-set/unrecorded.js';
import { DamagedRecordError, readRecord } from '../../repo/backup-set/record.js';
import type { OpenedRepository } from '../../repo/open-repository.js';

const HELP = `pgpitr expire removes the backups and WAL a retention policy no longer needs.

Usage:
  pgpitr expire --repo PATH --stanza NAME --retention-full=N | --retention-window=DURATION [--dry-run]
  pgpitr expire --repo PATH --stanza NAME --set=ID [--dry-run]
  pgpitr expire --repo PATH --stanza NAME --pin=ID [--pin-target=full|standalone] | --unpin=ID

Options:
      --retention-full=N        keep the N newest complete full backups and the diff and incr
                                backups after them (an older full backup's go with it)
      --retention-window=D      keep every point of the last D restorable (D: 30m, 12h, 7d, 2w)
      --set=ID                  expire that backup and every backup taking files from it,
                                whatever the policy (refused for a pinned or running one, or
                                when no complete full backup would be left, or none the newest
                                timeline can be restored from), and the WAL no remaining backup
                                needs; how a dead run's record is removed
      --dry-run                 say what would be removed, remove nothing
      --pin=ID / --unpin=ID     keep a backup whatever the policy (or stop keeping it)
      --pin-target=T            what the pin keeps with it: full (default), every WAL segment
                                after it, so that any later point stays recoverable from it; or
                                standalone, only the WAL from its start to its stop (an archival
                                backup, restorable to its end with --target-immediate, that
                                does not keep the archive growing)
A kept backup keeps every backup it takes files from (a diff's full backup, an incr's chain).
A backup being restored is kept, with the WAL after it, while the restore runs and until the
restored copy's recovery ends (a day at most; a week while its recovery.signal is still there,
seen from this host: a recovery not started yet): pgpitr restore leaves a lease for it.
Both policies may be given (a backup either keeps is kept), or set in the configuration
file (retention-full=, retention-window=, or repoN-retention-* for one repository); then
pgpitr backup applies them after each backup. With several repositories, a flag that differs
from a repository's own repoN-retention-* is refused unless --repo N names the repository, and
so are --set, --pin and --unpin of an ID several repositories hold (taken the same second).
${REPO_OPTIONS_HELP}`;

export const RETENTION_OPTIONS = {
  'retention-full': { type: 'string' },
  'retention-window': { type: 'string' },
} as const;

const EXPIRE_OPTIONS = {
  ...RETENTION_OPTIONS,
  'dry-run': { type: 'boolean' },
  pin: { type: 'string' },
  'pin-target': { type: 'string' },
  unpin: { type: 'string' },
  set: { type: 'string' },
} as const;

/**
 * The policy of a repository: --retention-full / --retention-window, else its repoN-retention-*
 * settings, else retention-* of the configuration file; null when none is set.
 */
export function retentionPolicy(o: RepoOptions, repo: RepoSettings): RetentionPolicy | null {
  const full = (o.extra['retention-full'] as string | undefined) ?? repo.retentionFull ?? o.configValue('retention-full');
  const window = (o.extra['retention-window'] as string | undefined) ?? repo.retentionWindow ?? o.configValue('retention-window');
  if (full === undefined && window === undefined) return null;
  const policy: RetentionPolicy = {};
  if (full !== undefined) {
    if (!/^\d+$/.test(full) || Number(full) < 1) throw usageError(`invalid retention-full "${full}"`, 'give a number of backups, 1 or more');
    policy.full = Number(full);
  }
  if (window !== undefined) {
    try {
      policy.windowMs = parseRetentionWindow(window);
    } catch (e) {
      throw usageError((e as Error).message);
    }
  }
  return policy;
}

/**
 * A backup's ID is its start time, unique in its own repository only: backups taken into two
 * repositories in the same second share it. An ID found in several is refused without --repo N,
 * so that expiring or unpinning one repository's backup never takes another's. A repository that
 * cannot be read here is left to the action itself, which reports it.
 */
async function refuseIdInSeveral(repos: OpenedRepository[], stanza: string, id: string, action: string): Promise<void> {
  if (repos.length < 2) return;
  const holders: string[] = [];
  for (const { repo, index } of repos) {
    // A damaged record is a backup of that ID too, and so is a set with a manifest and no record (--set removes it).
    const found = await readRecord(repo.storage, stanza, id).catch((e: unknown) => (e instanceof DamagedRecordError ? true : null));
    const unrecorded = found === null ? await unrecordedSet(repo.storage, stanza, id).catch(() => null) : null;
    if (found !== null || (unrecorded !== null && !unrecorded.leftover)) holders.push(`repo${index}`);
  }
  if (holders.length > 1) {
    throw usageError(`backup "${id}" exists in ${holders.join(' and ')}: each is that repository's own backup, taken in the same second`, `give --repo N to ${action} the backup of one repository (pgpitr info --set=${id} shows both)`);
  }
}

export async function expireCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('expire', argv, { extra: EXPIRE_OPTIONS });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const repos = await openEachRepository(o.repos, o.repoSelected);
  const several = repos.length > 1;
  const pin = o.extra['pin'] as string | undefined;
  const unpin = o.extra['unpin'] as string | undefined;
  const pinTarget = o.extra['pin-target'] as string | undefined;
  if (pinTarget !== undefined && pin === undefined) throw usageError('--pin-target goes with --pin=ID');
  if (pinTarget !== undefined && pinTarget !== 'full' && pinTarget !== 'standalone') throw usageError(`invalid --pin-target "${pinTarget}"`, 'give full (the WAL after the backup is kept too) or standalone (only the WAL that makes it consistent)');
  if (pin !== undefined || unpin !== undefined) {
    // A pin is a change of its own: a --dry-run, a policy or a --set beside it would be
    // silently ignored (an "unpin --dry-run" unpinning for real), so they are refused.
    const beside = [pin !== undefined && unpin !== undefined ? '--unpin' : null, o.extra['dry-run'] === true ? '--dry-run' : null, o.extra['set'] !== undefined ? '--set' : null, o.extra['retention-full'] !== undefined ? '--retention-full' : null, o.extra['retention-window'] !== undefined ? '--retention-window' : null].filter((f): f is string => f !== null);
    if (beside.length > 0) throw usageError(`--${pin !== undefined ? 'pin' : 'unpin'} cannot be given with ${beside.join(', ')}`, `run the ${pin !== undefined ? 'pin' : 'unpin'} alone (pgpitr info --set=ID shows whether a backup is pinned)`);
    // A backup lives in one repository: pinned where it is, absent elsewhere is no error.
    const id = (pin ?? unpin)!;
    await refuseIdInSeveral(repos, o.stanza, id, pin !== undefined ? 'pin' : 'unpin');
    const outcomes = await onEachRepository(repos, async ({ repo }) => {
      try {
        return { was: await setPinned(repo, o.stanza, id, pin !== undefined, pinTarget === 'standalone' ? 'standalone' : 'full') };
      } catch (e) {
        if (several && isPgpitrError(e) && e.code === 'ERR_NOT_FOUND') return false;
        throw e;
      }
    });
    throwFirstFailure(outcomes);
    const where = outcomes.filter((r) => r.result).map((r) => `repo${r.index}`);
    const wasPinned = outcomes.some((r) => r.result !== false && r.result?.was === true);
    if (where.length === 0) throw usageError(`backup "${id}" does not exist in any repository`, 'pgpitr info lists the backups');
    const kept = pinTarget === 'standalone' ? 'pinned standalone: expire keeps it with the WAL from its start to its stop (restore it with --target-immediate), not the WAL after it' : 'pinned: expire keeps it, and the WAL after it';
    printLine(`backup ${id} ${pin !== undefined ? kept : wasPinned ? 'unpinned' : 'was not pinned: nothing changed'}${several ? ` (${where.join(', ')})` : ''}`);
    return ExitCode.Ok;
  }
  const set = o.extra['set'] as string | undefined;
  const dryRun = o.extra['dry-run'] === true;
  // Each removal said as it is done (an expire killed later has said what it removed); at the end with JSON.
  const told = !dryRun && o.output !== 'json';
  const removed = (index: number) => (told ? { removed: (id: string, why: string) => printLine(`${several ? `repo${index}: ` : ''}expired backup ${id}: ${why}`) } : {});
  let outcomes: RepositoryOutcome<ExpireResult | null>[];
  if (set !== undefined) {
    if (o.extra['retention-full'] !== undefined || o.extra['retention-window'] !== undefined) throw usageError('--set expires one backup set whatever the policy: give it without --retention-full / --retention-window');
    // A backup lives in one repository: expired where it is, absent elsewhere is no error.
    await refuseIdInSeveral(repos, o.stanza, set, 'expire');
    outcomes = await onEachRepository(repos, async ({ repo, index }) => {
      try {
        return await expireUnderLock(repo, o.stanza, { set }, { dryRun, warn: (m) => printLine(`warning: ${m}`), ...removed(index) });
      } catch (e) {
        if (several && isPgpitrError(e) && e.code === 'ERR_NOT_FOUND' && / does not exist in stanza /.test(e.message)) return null;
        throw e;
      }
    });
    if (outcomes.every((r) => r.result === null && !r.error)) throw new PgpitrError('ERR_NOT_FOUND', `backup "${set}" does not exist in any repository`, { hint: 'pgpitr info lists the backups' });
  } else {
    // A flag over several repositories would override each one's own policy (the offsite repository
    // keeping 7 cut to the local one's 2): refused where they differ, unless --repo N names one.
    if (several) {
      for (const r of repos) {
        for (const [flag, own] of [['retention-full', r.settings.retentionFull], ['retention-window', r.settings.retentionWindow]] as const) {
          const given = o.extra[flag] as string | undefined;
          const same = flag === 'retention-full' ? Number(own) === Number(given) : own === given;
          if (given !== undefined && own !== undefined && !same) {
            throw usageError(`--${flag}=${given} would override repo${r.index}-${flag}=${own}`, `leave out --${flag} to expire each repository under its own policy, or give --repo N to expire one repository by the flag`);
          }
        }
      }
    }
    // Each repository under its own policy (repoN-retention-*); refused before anything is removed.
    const policies = new Map(repos.map((r) => [r.index, retentionPolicy(o, r.settings)]));
    for (const [index, policy] of policies) {
      if (!policy) throw usageError(`no retention policy${several ? ` for repo${index}` : ''}`, `give --retention-full=N and/or --retention-window=D (or set them in the configuration file${several ? `, or repo${index}-retention-full / -window` : ''}), or --set=ID`);
    }
    outcomes = await onEachRepository(repos, ({ repo, index }) => expireUnderLock(repo, o.stanza, { policy: policies.get(index)! }, { dryRun, warn: (m) => printLine(`warning: ${m}`), ...removed(index) }));
  }
  if (o.output === 'json') {
    const each = outcomes.map((r) => ({
      repo: r.index,
      location: r.location,
      ...(r.error ? { error: r.error.message } : r.result ? { keep: r.result.decision.keep, expire: r.result.decision.expire, wal_removed: r.result.walRemoved, wal_kept_own_range: r.result.standaloneWal, unrecorded: r.result.unrecorded } : { absent: true }),
    }));
    const first = outcomes[0]!.result;
    process.stdout.write(JSON.stringify({ dry_run: dryRun, ...(first ? { keep: first.decision.keep, expire: first.decision.expire, wal_removed: first.walRemoved, wal_kept_own_range: first.standaloneWal, unrecorded: first.unrecorded } : {}), repositories: each }, null, 2) + '\n');
  } else {
    const verb = dryRun ? 'would expire' : 'expired';
    for (const r of outcomes) {
      const p = several ? `repo${r.index}: ` : '';
      if (r.error) {
        printLine(`${p}ERROR: ${r.error.message}`);
        continue;
      }
      if (!r.result) {
        printLine(`${p}backup ${set} is not in this repository`);
        continue;
      }
      if (!told) for (const e of r.result!.decision.expire) printLine(`${p}${verb} backup ${e.id}: ${e.why}`);
      for (const k of r.result!.decision.keep) printLine(`${p}kept backup ${k.id}: ${k.why}`);
      const w = r.result!.walRemoved;
      if (w) printLine(`${p}${dryRun ? 'would remove' : 'removed'} ${w.count} archived WAL file(s), ${w.first} to ${w.last}${r.result!.standaloneWal.length > 0 ? ' (but for the ranges kept below)' : ''}`);
      else printLine(`${p}no archived WAL to remove`);
      // Why the WAL stays from there: a pinned backup keeps every segment after its start (said, so that an archive growing for it is not a surprise).
      const kept = r.result!.decision.walKeptFor;
      if (kept) printLine(`${p}archived WAL kept from the start of backup ${kept.id} on: ${kept.why}`);
      for (const k of r.result!.standaloneWal) printLine(`${p}archived WAL kept for backup ${k.id} alone (its start to its stop, not after it): ${k.from} to ${k.to}`);
      for (const id of r.result!.unrecorded) printLine(`${p}warning: ${unrecordedKept(id)}`);
    }
  }
  throwFirstFailure(outcomes);
  return ExitCode.Ok;
}
