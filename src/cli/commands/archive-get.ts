// `pgpitr archive-get %f %p` for restore_command: fetches, decompresses and
// verifies one WAL file. Exit 1 means "the repository is healthy and does not
// hold this file" (recovery then knows it reached the end of the archive).
// PostgreSQL takes every exit status from 1 to 125 for that, so every other
// failure (bad options, unknown stanza, unreachable repository, damaged file,
// a bug) exits ArchiveGetError (above 125): recovery stops, with our message
// in the server log, instead of ending early and promoting without the rest.
// The work is commands/archive-get.ts (with --archive-async, the prefetch
// spool and its background fetcher); this file parses and maps the outcome.

import { parseRepoOptions, REPO_OPTIONS_HELP, ARCHIVE_GET_ASYNC_HELP } from '../repo-options.js';
import { openEachRepository } from '../../repo/open-repository.js';
import { archiveGet, locations, runBackgroundFetcher } from '../../commands/archive-get.js';
import type { ArchiveGetRequest } from '../../commands/archive-get.js';
import type { NumberedRepository } from '../../repo/numbered-repository.js';
import type { AskAnswerer } from '../../archiving/prefetch-ask.js';
import type { RepoOptions } from '../repo-options.js';
import { ExitCode, failureExitCode } from '../exit-codes.js';
import { printError, printLine } from '../output.js';
import { usageError } from '../../common/errors.js';
import type { PgpitrError } from '../../common/errors.js';
import { isAbsolute } from 'node:path';
import { endsRecoveryAtArchiveEnd, walFileInDataDir } from '../../postgres/recovery-signals.js';
import { controlSystemIdentifier } from '../../postgres/control-file.js';

const HELP = `pgpitr archive-get fetches a WAL file from the repository (for restore_command).

Usage:
  restore_command = 'pgpitr archive-get --missing-exit=81 --repo PATH --stanza NAME %f "%p"; case $? in 0) exit 0;; 81) exit 1;; *) exit 200;; esac'
The case makes every exit but "not in the archive" 200, which stops recovery: a
pgpitr that cannot load (its files half replaced by an upgrade) exits 1, which
alone would end recovery there. pgpitr restore writes this form itself.

Asynchronous prefetch, for fast recovery: a background process keeps the next
segments fetched, verified and synced in the spool; the shell move in front
hands those over without starting pgpitr:
  restore_command = 'D=SPOOL/NAME/archive-get; [ -O $D ] && { read -r p s < $D/fetcher.cleared && [ -n "\${p##*[!0-9]*}" ] && read -r l < /proc/$p/stat; } 2>/dev/null && set -- \${l##*") "} && case $1 in [ZTtXx]) false;; esac && [ "\${20}" = "$s" ] && mv $D/%f "%p" 2>/dev/null && exit 0; pgpitr archive-get --missing-exit=81 --archive-async --spool-path SPOOL --repo PATH --stanza NAME %f "%p"; case $? in 0) exit 0;; 81) exit 1;; *) exit 200;; esac'
The shell move hands over a file of that name only while the fetcher that
cleared the spool runs (its pid and start time, in fetcher.cleared, match /proc):
what a fetcher killed outright left is not taken. Give each cluster recovered on
a host its own SPOOL (pgpitr restore does, one per system and repositories).

With several repositories (repo1-path, repo2-path, ... in the configuration
file) they are tried in order, and a repository that cannot be read or holds a
damaged copy is passed over, with a warning, for a later one holding the file;
--repo N uses only that one. The file is "not in the archive" only when every
repository answered without it. Without --recovery-timeline (recovery follows
the newest timeline), no segment is given while a repository cannot be read: it
may hold a newer timeline's history file, which decides whose segment recovery
must be given (exit 200).

In a recovery (recovery.signal in the data directory, no standby.signal), a
segment that is not in the archive (nor in pg_wal) while a later one is, along
the timeline recovery follows (--recovery-timeline N, else the newest), is a
gap: it fails rather than ends recovery there. --accept-archive-gap ends
recovery at the gap (restore writes it for a recovery with a target).

A repository whose stanza is for another database system than the cluster
being recovered is never fetched from: --system-id ID names the system (restore
writes it), else the data directory's pg_control says it when PostgreSQL runs
the command there. Where neither says it, --archive-async fetches directly.

${REPO_OPTIONS_HELP}${ARCHIVE_GET_ASYNC_HELP}Recovery options (pgpitr restore writes them in its restore_command):
      --missing-exit=N         exit N (1 to 125) rather than 1 for a file not in the archive
      --system-id=ID           the database system being recovered (else its pg_control says it)
      --recovery-timeline=N    the timeline recovery follows (else the newest in the archive)
      --accept-archive-gap     end recovery at a gap rather than fail (a recovery with a target)

Exit status: 0 fetched, 1 not in the archive (the repositories and stanza are
healthy; --missing-exit=N: N instead, which restore's restore_command turns back
into 1 while any other code, a pgpitr that cannot load included, becomes 200),
${ExitCode.ArchiveGetError} any other failure: PostgreSQL then stops recovery instead of
ending it early (see docs/exit-codes.md).
`;

export async function archiveGetCommand(argv: string[]): Promise<number> {
  try {
    const o = parseRepoOptions('archive-get', argv, { extra: EXTRA });
    if (o.help) {
      process.stdout.write(HELP);
      return ExitCode.Ok;
    }
    // Every repository, in order (--repo N: that one only).
    const repos = await openEachRepository(o.repos, o.repoSelected);
    const [name, dest, ...extra] = o.positionals;
    const req = requestOf(o, repos, '.', dest);
    if (o.fetcher) {
      const { prefetchDir } = await import('../../archiving/prefetch.js');
      const { fetcherSettings } = await import('../../archiving/prefetch-start.js');
      const own = { spool: prefetchDir(o.spoolPath, o.stanza), settings: fetcherSettings(locations(repos), o.stanza, req.systemId, req.followedTimeline ?? null) };
      await runBackgroundFetcher(req, { spoolPath: o.spoolPath, getQueueMaxBytes: o.getQueueMaxBytes, processMax: o.processMax }, answerer(own));
      return ExitCode.Ok;
    }
    if (!name || !dest || extra.length > 0) throw usageError('give the WAL file name (%f) and the destination path (%p)');
    const fetched = await archiveGet(req, name, dest, o.archiveAsync ? { spoolPath: o.spoolPath, optionArgs: o.optionArgs } : null);
    return fetched ? ExitCode.Ok : missingExit(o.extra['missing-exit']);
  } catch (e) {
    printError(e);
    // A standby too: told "not found" on a fault, one being promoted would end recovery there,
    // before WAL the archive holds (PostgreSQL drains the archive before it promotes).
    return failureExitCode('archive-get', (e as PgpitrError).code);
  }
}

const EXTRA = { 'system-id': { type: 'string' }, 'accept-archive-gap': { type: 'boolean' }, 'recovery-timeline': { type: 'string' }, 'missing-exit': { type: 'string' } } as const;

/** What archive-get is asked, run in `cwd` (the data directory when PostgreSQL runs it) with %p `dest`. */
function requestOf(o: RepoOptions, repos: NumberedRepository[], cwd: string, dest: string | undefined): ArchiveGetRequest {
  const inDataDir = dest !== undefined && !isAbsolute(dest);
  const followed = followedTimeline(o.extra['recovery-timeline']);
  return {
    repos,
    stanza: o.stanza,
    warn: (text: string) => printLine(`warning: ${text}`),
    systemId: systemBeingRecovered(o.extra['system-id'], inDataDir ? cwd : null),
    stopAtGap: o.extra['accept-archive-gap'] !== true && inDataDir && endsRecoveryAtArchiveEnd(cwd) ? { timeline: followed, inDataDir: async (n: string) => walFileInDataDir(cwd, n, (await import('../../storage/filter/crc32c.js')).crc32c) } : null,
    branch: inDataDir ? { standby: !endsRecoveryAtArchiveEnd(cwd) } : null,
    dataDir: inDataDir ? cwd : null,
    followedTimeline: followed,
  };
}

/**
 * The background fetcher's answers to restore_command's shell (bin/pgpitr-spool-get): what
 * archive-get with the shell's options, run where the shell runs, would answer, when those
 * options reach this fetcher's spool and repositories; else none (the shell runs archive-get,
 * which reports a spool in use for other repositories). Warnings (a repository passed over) go
 * to the fetcher's log, as the prefetch's do; failures are no answer, and archive-get reports them.
 */
function answerer(own: { spool: string; settings: string[] }): AskAnswerer {
  return async (ask, into) => {
    const { prefetchDir } = await import('../../archiving/prefetch.js');
    const { fetcherSettings } = await import('../../archiving/prefetch-start.js');
    const o = parseRepoOptions('archive-get', ask.args, { extra: EXTRA });
    if (o.help || o.fetcher || !o.archiveAsync || o.positionals.length > 0 || prefetchDir(o.spoolPath, o.stanza) !== own.spool) return null;
    // Run by PostgreSQL (%p relative), the shell's directory must be the data directory as this
    // process sees it, of the system the options name: else the gap check would not see it.
    if (!isAbsolute(ask.dest)) {
      const system = controlSystemIdentifier(ask.cwd);
      if (system === null || (typeof o.extra['system-id'] === 'string' && o.extra['system-id'] !== system)) return null;
    }
    const repos = await openEachRepository(o.repos, o.repoSelected);
    const req = requestOf(o, repos, ask.cwd, ask.dest);
    if (JSON.stringify(fetcherSettings(locations(repos), o.stanza, req.systemId, req.followedTimeline ?? null)) !== JSON.stringify(own.settings)) return null;
    return archiveGet(req, ask.name, into, { fetcherDir: own.spool });
  };
}

/**
 * The code for a file not in the archive: 1, or --missing-exit N (restore's restore_command, whose
 * shell turns N into 1 and every other failure into 200: commands/restore.ts restoreCommandFor).
 */
function missingExit(text: unknown): number {
  if (text === undefined) return ExitCode.ArchiveNotFound;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 125) throw usageError(`invalid --missing-exit "${String(text)}"`, 'give an exit code from 1 to 125');
  return n;
}

/** --recovery-timeline N (restore writes the timeline recovery follows); null: the newest in the archive. */
function followedTimeline(given: unknown): number | null {
  if (typeof given !== 'string') return null;
  const n = Number(given);
  if (!/^\d{1,10}$/.test(given) || n < 1 || n > 0xffffffff) throw usageError(`invalid --recovery-timeline "${given}"`, 'give the timeline recovery follows, a number from 1');
  return n;
}

/**
 * The system whose WAL is asked for: --system-id, else, when PostgreSQL runs restore_command (in
 * the data directory `dataDir`, %p relative to it), the system identifier in its pg_control; else not known.
 */
function systemBeingRecovered(given: unknown, dataDir: string | null): string | null {
  if (typeof given === 'string') {
    if (!/^\d{1,20}$/.test(given)) throw usageError(`invalid --system-id "${given}"`, 'give the database system identifier (pg_controldata says it), digits only');
    return given;
  }
  return dataDir === null ? null : controlSystemIdentifier(dataDir);
}
