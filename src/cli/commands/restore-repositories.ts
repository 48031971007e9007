// Which repository a restore without --repo N reads, and what its restore_command may read then.
// restore_command asks every configured repository, in order, and archive-get stops recovery (200)
// when a file is in none of them while one could not be read (it may hold it): a repository that is
// down, or holds another system's stanza, would stop the restored server's recovery there.

import { PgpitrError } from '../../common/errors.js';
import { LatestTimelineDoubt } from '../../restore/latest-timeline.js';
import { openRepository } from '../../repo/open-repository.js';
import { readStanza } from '../../repo/stanza.js';
import type { StanzaInfo } from '../../repo/stanza.js';
import type { RepoSettings } from '../../repo/repo-settings.js';
import type { RepositoryRestoreRequest } from '../../commands/restore.js';
import { restoreFromRepository } from '../../commands/restore.js';
import { newestArchivedTimeline } from '../../repo/followed-branch.js';
import type { Repository } from '../../repo/repository.js';

/**
 * With several repositories (and no --repo N): the first, in order, that holds a backup able to
 * reach the target, found by planning (a dry run) on each; the reasons of those passed over are
 * logged. One that cannot be reached is passed over too, with a warning.
 */
export async function chooseRepository(repos: RepoSettings[], stanza: string, request: RepositoryRestoreRequest, log: (line: string) => void): Promise<RepoSettings> {
  if (repos.length === 1) return repos[0]!;
  const passed: string[] = [];
  let firstError: Error | undefined;
  for (const r of repos) {
    try {
      await restoreFromRepository(await openRepository(r), stanza, { ...request, dryRun: true, log: () => {} });
      if (passed.length > 0) log(`restore: from repository ${r.index}, since ${passed.join('; ')}`);
      return r;
    } catch (e) {
      const err = e as Error & { code?: string };
      // The same for every repository; and a doubt about the latest timeline holds whichever repository
      // is read (restore_command reads WAL from all of them).
      if (err.code === 'ERR_USAGE' || err.code === 'ERR_TARGET' || e instanceof LatestTimelineDoubt) throw e;
      firstError ??= err;
      passed.push(`repository ${r.index} cannot serve it: ${err.message}`);
    }
  }
  const first = firstError as PgpitrError;
  throw new PgpitrError(first instanceof PgpitrError ? first.code : 'ERR_INTERNAL', `no repository can restore it: ${passed.join('; ')}`, first.hint ? { hint: first.hint } : {});
}

/**
 * The request restore_command is written from, once `chosen` is known: as it was when every other
 * repository can be read and holds this system's stanza. One that holds another system's is
 * refused (restore with --repo N). One that cannot be read: a recovery to a target (which the
 * plan found `chosen` reaches alone) or a standby reads `chosen` only, said; a recovery to the
 * end of the archive is refused, since the one that cannot be read may hold WAL past the chosen
 * archive's end, and restore_command would stop there until it is back. Said before anything is written.
 */
export async function requestForOthers(repos: RepoSettings[], chosen: RepoSettings, info: StanzaInfo, stanza: string, request: RepositoryRestoreRequest, warn: (line: string) => void): Promise<RepositoryRestoreRequest> {
  const unreadable: string[] = [];
  let chosenNewest: number | undefined;
  for (const r of repos) {
    if (r === chosen) continue;
    let other: StanzaInfo;
    let otherRepo: Repository;
    try {
      otherRepo = await openRepository(r);
      other = await readStanza(otherRepo, stanza);
    } catch (e) {
      unreadable.push(`repository ${r.index} (${(e as Error).message})`);
      continue;
    }
    if (other.system_identifier !== info.system_identifier) {
      throw new PgpitrError('ERR_CHECK', `repository ${r.index} holds stanza "${stanza}" of database system ${other.system_identifier}, the backup restored is of system ${info.system_identifier}: the server's restore_command, which asks every repository, would stop recovery there`, {
        hint: `restore with --repo ${chosen.index} (restore_command then uses that repository only)`,
      });
    }
    // The latest timeline is planned from the chosen repository's history files; one that only
    // another repository holds (its copy still owed to the chosen one after a failover) would be
    // left out: recovery would follow an older timeline to its end, past the fork, and promote (or
    // stop at a target on the older timeline's abandoned part). Refused for every target, whatever
    // its place (one before the fork would be safe). A standby is not pinned to a timeline: its
    // restore_command finds the newer history file in the other repository, and it follows it.
    if (request.target.timeline === 'latest' && !request.standby) {
      chosenNewest ??= await newestArchivedTimeline(await openRepository(chosen), stanza);
      const newest = await newestArchivedTimeline(otherRepo, stanza).catch(() => null);
      if (newest === null) unreadable.push(`repository ${r.index} (its archive could not be listed)`);
      else if (newest > chosenNewest) {
        throw new PgpitrError('ERR_CHECK', `repository ${r.index} holds the history file of timeline ${newest}, which repository ${chosen.index} (the one holding the backup chosen) lacks, its newest timeline being ${chosenNewest}: recovery to the latest timeline would follow timeline ${chosenNewest} and leave out timeline ${newest}'s WAL`, {
          hint: `restore with --repo ${r.index} if it holds a backup that reaches the target; or copy the history file into repository ${chosen.index} (pgpitr archive-push of pg_wal/${newest.toString(16).toUpperCase().padStart(8, '0')}.history from a server on that timeline); or give --target-timeline ${chosenNewest} to recover along timeline ${chosenNewest} knowingly`,
        });
      }
    }
  }
  if (unreadable.length === 0) return request;
  const which = unreadable.join(', ');
  if (request.target.target.kind === 'end' && !request.standby) {
    throw new PgpitrError('ERR_CHECK', `${which} cannot be read, and a recovery to the end of the archive asks every repository for the WAL after repository ${chosen.index}'s last: restore_command would stop recovery there (it may hold more) until it is back`, {
      hint: `bring it back, or restore with --repo ${chosen.index} to recover to the end of repository ${chosen.index}'s archive alone (WAL archived only in the other is then not replayed)`,
    });
  }
  warn(`warning: ${which} cannot be read: restore_command reads repository ${chosen.index} only (--repo ${chosen.index}), which holds the WAL this recovery needs`);
  return { ...request, reachArgs: pinnedReachArgs(request.reachArgs, chosen.index), fetchFrom: request.fetchFrom.filter((r) => r.index === chosen.index) };
}

/** The options that reach the repositories, narrowed to repository `index`: the legacy --repo PATH is repository 1's path then. */
export function pinnedReachArgs(args: readonly string[], index: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--repo' && i + 1 < args.length) out.push(`--repo1-path=${args[++i]}`);
    else out.push(args[i]!);
  }
  out.push('--repo', String(index));
  return out;
}

