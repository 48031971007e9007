// `pgpitr restore`: a backup of the stanza into a data directory, set to
// recover to a target (restore/engine.ts), with what the engine needs from the
// repository (the stanza record, the backup records, the archive as it is
// now) and the restore_command it writes: pgpitr archive-get, through the
// asynchronous prefetch unless told not to, whose spool is made ready here.

import { shellQuote } from '../common/shell-quote.js';
import { usageError } from '../common/errors.js';
import { readStanza } from '../repo/stanza.js';
import { openWalArchiveView } from '../repo/wal-archive-view.js';
import { withReceivedWal } from '../repo/received-wal-view.js';
import { listRecords, referencesOf } from '../repo/backup-set/record.js';
import { RestoreLease, expiryStampWhenQuiet } from '../repo/restore-lease.js';
import type { Repository } from '../repo/repository.js';
import { restore } from '../restore/engine.js';
import type { RestoreOutcome, RestoreRequest } from '../restore/engine.js';
import { prepareSpool, spoolOwner, spoolTrustedOwners } from '../archiving/prefetch-spool.js';
import { unsafeSpoolPlace } from '../archiving/spool-safety.js';
import { clearFetchFailures, openPrefetchDir, prefetchDir } from '../archiving/prefetch.js';
import { CLEARED } from '../archiving/fetcher-cleared.js';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetcherSettings, warmPrefetch } from '../archiving/prefetch-start.js';
import type { RestorePlan } from '../restore/plan.js';

export type RepositoryRestoreRequest = Omit<RestoreRequest, 'storage' | 'stanza' | 'segmentSize' | 'records' | 'archive' | 'restoreCommand'> & {
  /** The prefetch spool restore_command uses; null: archive-get without prefetch. */
  spoolPath: string | null;
  /** The options that reach the repository from restore_command (never a secret): --repo PATH, --config FILE, ... */
  reachArgs: string[];
  /** The repositories restore_command's archive-get fetches from (all, or --repo N), as its fetcher records them. */
  fetchFrom: readonly { index: number; location: string }[];
};

export async function restoreFromRepository(repo: Repository, stanza: string, req: RepositoryRestoreRequest): Promise<RestoreOutcome> {
  // Before the catalog: an expire removing backups now is waited for; one that runs between this
  // reading and the lease changes the stamp (repo/restore-lease.ts).
  const stampBefore = await expiryStampWhenQuiet(repo.storage, stanza, { log: req.log });
  const info = await readStanza(repo, stanza);
  const { spoolPath: askedSpool, reachArgs: givenReach, fetchFrom, ...rest } = req;
  // A spool another user could write is not used (archiving/spool-safety.ts): restore_command moves
  // what is there into pg_wal. Judged before anything is written; the recovery then fetches without it.
  const trustedOwners = spoolTrustedOwners(req.pgData); // before restore makes the data directory (root's then)
  const unsafe = askedSpool === null || req.recoveryOptions?.some((o) => o.name === 'restore_command') ? null : unsafeSpoolPlace(askedSpool, trustedOwners);
  if (unsafe !== null) req.log(`warning: the prefetch spool ${askedSpool} is not safe (${unsafe}): recovery fetches each WAL file without the prefetch; give a --spool-path only the server's user (and root) can write`);
  const givenSpool = unsafe === null ? askedSpool : null;
  // restore_command fetches only this system's WAL (archive-get --system-id), from a spool of its own.
  const reachArgs = [...givenReach, `--system-id=${info.system_identifier}`];
  const settings = fetcherSettings(fetchFrom, stanza, info.system_identifier);
  // A restore_command of the DBA's own (--recovery-option) reads no prefetch spool: none is started.
  const own = req.recoveryOptions?.find((o) => o.name === 'restore_command');
  const ownCommand = own !== undefined;
  // archive-get without --recovery-timeline takes the newest timeline for the one followed.
  if (own && req.target.timeline !== 'latest' && /archive-get/.test(own.value) && !/--recovery-timeline/.test(own.value)) {
    req.log('warning: the restore_command given runs archive-get without --recovery-timeline while recovery does not follow the latest timeline: add --recovery-timeline with the timeline followed (archive-get otherwise judges segments along the newest timeline, and stops recovery where the two differ)');
  }
  // One spool per data directory and branch followed (restore_command's --recovery-timeline, none
  // for a standby following the latest): a fetcher left by a recovery along another branch never
  // holds this one's spool, nor fills it.
  const spoolFor = (followed: number | null): string | null =>
    ownCommand || givenSpool === null ? null : restoreSpool(givenSpool, followed === null ? settings : [...settings, `timeline ${followed}`], req.pgData);
  const followedOf = (plan: RestorePlan): number | null => (req.standby && req.target.timeline === 'latest' ? null : plan.branch.timeline);
  // Refused before anything is written (restoreCommandFor is built at the very end).
  if (!ownCommand) refuseLineBreaks(reachArgs, stanza, spoolFor(null));
  // Made ready (and given to the server's user) once the target is checked and locked: a restore
  // refused before it writes anything leaves nothing behind.
  const readySpool = (plan: RestorePlan): void => {
    const spoolPath = spoolFor(followedOf(plan));
    if (spoolPath === null) return;
    const closed = prepareSpool(spoolPath, stanza, req.pgData, givenSpool!, trustedOwners);
    if (closed !== null) req.log(`warning: ${closed}`);
    clearFetchFailures(prefetchDir(spoolPath, stanza));
  };
  // The prefetch gets a head start: the first segments recovery needs are fetched while the files
  // are written, and the fetcher is there (started again if it stopped) when the server starts.
  const headStart = async (plan: RestorePlan, whileWriting: boolean): Promise<void> => {
    const followed = followedOf(plan);
    const spoolPath = spoolFor(followed);
    if (spoolPath === null || plan.walNeeded.length === 0) return;
    const owner = spoolOwner(req.pgData, givenSpool!);
    // As root into a directory root owns, the server's user is not known: no head start (files
    // root left in the spool would be out of reach of that user's restore_command).
    if (owner === null) return;
    // Along the branch restore_command follows (the timeline it names: restore's write-recovery-settings).
    const args = archiveGetArgs(followed === null ? reachArgs : [...reachArgs, `--recovery-timeline=${followed}`], stanza, spoolPath);
    try {
      // While the files are written, only the segments the backup needs (the copy comes first);
      // from the end of restore on, the fetcher's whole window.
      const firstWindow = whileWriting ? plan.walNeeded.length : undefined;
      await warmPrefetch(args, openPrefetchDir(spoolPath, stanza), fetcherSettings(fetchFrom, stanza, info.system_identifier, followed), plan.walNeeded[0]!, info.wal_segment_size, owner, firstWindow, req.pgData);
    } catch (e) {
      // Only a head start: restore_command starts the fetcher anyway (and reports what stops it).
      req.log(`warning: the WAL prefetch was not started ahead of the server: ${(e as Error).message}`);
    }
  };
  // A recovery that ends, through pgpitr's restore_command, is handed what receive-wal received past the archive.
  const archiveFor = async () => {
    const view = await openWalArchiveView(repo, stanza, req.log);
    return req.standby || ownCommand ? view : withReceivedWal(view, repo, stanza, info.wal_segment_size, info.system_identifier, req.log);
  };
  const request: RestoreRequest = {
    ...rest,
    beforeFiles: (plan) => {
      readySpool(plan);
      return headStart(plan, true);
    },
    afterFiles: (plan) => headStart(plan, false),
    storage: repo.storage,
    stanza,
    segmentSize: info.wal_segment_size,
    records: await listRecords(repo.storage, stanza),
    archive: await archiveFor(),
    // archive-get tells a gap from the end of the archive along the timeline recovery follows.
    restoreCommand: (timeline) => restoreCommandFor(timeline === null ? reachArgs : [...reachArgs, `--recovery-timeline=${timeline}`], stanza, spoolFor(timeline)),
  };
  return restoreUnderLease(repo, stanza, request, stampBefore);
}

/**
 * The backup's files are read until the end of restore, and recovery fetches the WAL after it: a
 * lease keeps expire from removing them meanwhile (repo/restore-lease.ts), released if the restore
 * fails, held for the recovery if it succeeds.
 */
async function restoreUnderLease(repo: Repository, stanza: string, request: RestoreRequest, stampBefore: string): Promise<RestoreOutcome> {
  let lease: RestoreLease | null = null;
  const claimBackup = async (plan: RestorePlan): Promise<void> => {
    lease = await RestoreLease.take(repo.storage, stanza, plan.backup.id, () => missingNow(repo, stanza, plan.backup.id), { log: request.log, stampBefore });
  };
  let outcome: RestoreOutcome;
  try {
    outcome = await restore({ ...request, claimBackup });
  } catch (e) {
    await (lease as RestoreLease | null)?.release();
    throw e;
  }
  const held = lease as RestoreLease | null;
  if (held !== null) {
    await held.hold(resolve(request.pgData)).catch((e: unknown) => request.log(`warning: the lease that keeps backup ${outcome.plan.backup.id} from expiring during recovery could not be written: ${(e as Error).message}`));
  }
  return outcome;
}

/** What of the backup (and those it takes files from) is no longer a complete backup, said; null when all are. */
async function missingNow(repo: Repository, stanza: string, id: string): Promise<string | null> {
  const records = await listRecords(repo.storage, stanza);
  const complete = new Set(records.filter((r) => r.state === 'complete').map((r) => r.id));
  const r = records.find((x) => x.id === id);
  if (!r || !complete.has(id)) return `backup ${id} is no longer a complete backup of stanza ${stanza}`;
  const lost = referencesOf(r).find((ref) => !complete.has(ref));
  return lost === undefined ? null : `backup ${lost}, which backup ${id} takes files from, is no longer a complete backup of stanza ${stanza}`;
}

/**
 * The prefetch spool of restores into `pgData` fetching what this one fetches (the same system,
 * stanza and repositories): <spool>/restore-<digest of those>. The shell's mv in restore_command
 * hands over whatever file of that name is there, unchecked: a spool shared with the recovery of
 * another system, or left by one, would give the server that system's WAL, which it takes for the
 * end of its own; one shared by two recoveries of the same system would have each take segments
 * the other asked for.
 */
export function restoreSpool(spool: string, settings: string[], pgData: string): string {
  const key = JSON.stringify([...settings, resolve(pgData)]);
  return join(spool, `restore-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`);
}

/** For restore_command: PostgreSQL replaces %f, %p and %r everywhere in it, %% gives one %. */
function percentEscaped(s: string): string {
  return s.replace(/%/g, '%%');
}

/** archive-get's options in restore_command, and for the fetcher restore starts ahead of the server. */
function archiveGetArgs(reach: string[], stanza: string, spool: string | null): string[] {
  // Said either way: archive-get reads archive-async from its own sections of the configuration
  // file ([global:archive-get]), which may say otherwise than restore's.
  return [...(spool === null ? ['--no-archive-async'] : ['--archive-async', '--spool-path', spool]), ...reach, '--stanza', stanza];
}

/** The exit code archive-get gives restore_command's shell for a file not in the archive (restoreCommandFor). */
export const MISSING_EXIT = 81;

/** The shell script that asks a running fetcher for a file (bin/pgpitr-spool-get, archiving/prefetch-ask.ts). */
const SPOOL_GET = fileURLToPath(new URL('../../../bin/pgpitr-spool-get', import.meta.url));

/**
 * restore_command for this repository: archive-get, with the shell's mv in front for prefetched
 * files and, for the rest, a question to the running fetcher (pgpitr-spool-get: no Node start).
 * Only archive-get's or the fetcher's own "not in the archive" (MISSING_EXIT) becomes 1, the code
 * that tells PostgreSQL the archive ends there; every other failure becomes 200, which stops
 * recovery: a pgpitr the server's user cannot load (an installation it cannot read, one removed by
 * an upgrade) makes Node exit 1, which would otherwise end recovery early, silently, at the backup.
 * Every status of pgpitr-spool-get but 0 and MISSING_EXIT (no fetcher, a script gone) runs archive-get.
 */
/**
 * Written escaped, a line break in restore_command would come back raw the first time ALTER SYSTEM
 * rewrites postgresql.auto.conf (it escapes only quotes and backslashes): the server would not start.
 */
export function refuseLineBreaks(reach: string[], stanza: string, spool: string | null): void {
  const broken = [...reach, stanza, spool ?? '', process.execPath, process.argv[1] ?? '', SPOOL_GET].find((a) => /[\r\n]/.test(a));
  if (broken !== undefined) throw usageError(`restore_command cannot hold a line break, found in ${JSON.stringify(broken)}`, 'remove it (a value from a file often ends with one): configuration file, repository and spool paths, PGPITR_REPON_* values');
}

export function restoreCommandFor(reach: string[], stanza: string, spool: string | null): string {
  const pgpitr = percentEscaped(`${shellQuote(process.execPath)} ${shellQuote(process.argv[1]!)}`);
  // option names as they are, values (and --name=value) quoted
  const options = percentEscaped([`--missing-exit=${MISSING_EXIT}`, ...archiveGetArgs(reach, stanza, spool)].map((a) => (/^--[a-z0-9-]+$/.test(a) ? a : shellQuote(a))).join(' '));
  const get = `${pgpitr} archive-get ${options} %f "%p"; case $? in 0) exit 0;; ${MISSING_EXIT}) exit 1;; *) exit 200;; esac`;
  if (spool === null) return get;
  const dir = percentEscaped(shellQuote(prefetchDir(spool, stanza)));
  const ask = `sh ${percentEscaped(shellQuote(SPOOL_GET))} ${dir} %f "%p" ${options}; case $? in 0) exit 0;; ${MISSING_EXIT}) exit 1;; esac`;
  return `${spoolMove(dir)}; ${ask}; ${get}`;
}

/**
 * restore_command's handover of a prefetched file by the shell alone (`dir` quoted, %-escaped):
 * only from a directory of the server's user (one another user put in its place is passed by:
 * archiving/spool-safety.ts), and only while the fetcher that cleared the spool runs, its pid and
 * start time in fetcher.cleared matching /proc, neither a zombie nor stopped (SIGSTOP: it would not
 * remove what a new timeline leaves off the branch) (builtins only: no process is started). Files a
 * fetcher killed outright left (prefetched along a timeline abandoned since, maybe) are not taken:
 * archive-get then starts a fetcher, which clears them.
 */
export function spoolMove(dir: string): string {
  return `[ -O ${dir} ] && { read -r p s < ${dir}/${CLEARED} && [ -n "\${p##*[!0-9]*}" ] && read -r l < /proc/$p/stat; } 2>/dev/null && set -- \${l##*") "} && case $1 in [ZTtXx]) false;; esac && [ "\${20}" = "$s" ] && mv ${dir}/%f "%p" 2>/dev/null && exit 0`;
}
