// `pgpitr archive-push %p` for archive_command: stores one WAL file in the
// stanza's archive. Idempotent: the same content already archived succeeds
// with a warning; different content fails. Exit codes stay between 1 and 125
// so that a failure never makes PostgreSQL's archiver restart.
// The work is commands/archive-push.ts (with --archive-async, the spool of the
// background pusher, which --pusher runs); this file parses and prints.

import { basename } from 'node:path';
import { parseRepoOptions, REPO_OPTIONS_HELP, COMPRESS_OPTIONS_HELP, ARCHIVE_PUSH_ASYNC_HELP } from '../repo-options.js';
import type { RepoOptions } from '../repo-options.js';
import { openRepositories } from '../../repo/open-repository.js';
import { describeRepository } from '../../repo/repo-settings.js';
import { repoTitle } from '../../repo/numbered-repository.js';
import { archivePush, archivePushAsync, runBackgroundPusher } from '../../commands/archive-push.js';
import type { ArchivePushRequest } from '../../commands/archive-push.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { printError, printLine } from '../output.js';
import { PgpitrError, usageError } from '../../common/errors.js';

const HELP = `pgpitr archive-push stores a WAL file in every configured repository (for archive_command).

Usage:
  archive_command = 'pgpitr archive-push --repo PATH --stanza NAME %p'

Asynchronous mode, for servers that write WAL faster than one process per file
can store it: a background process stores ahead, several at a time, the files
PostgreSQL marks ready, and archive_command answers from what it has done.
pgpitr-spool-wait (a shell script installed with pgpitr) waits for the pusher and
answers stored files without starting Node:
  archive_command = 'pgpitr-spool-wait SPOOL/NAME/archive-push %f || pgpitr archive-push --archive-async --spool-path SPOOL --repo PATH --stanza NAME %p'
The pusher picks up changed settings within a minute.
With --archive-push-queue-max, WAL waiting beyond that size is dropped (recorded
in the repository, reported by info and check, logged as an error) rather than
left to fill pg_wal and stop the server.

With several repositories (repo1-path, repo2-path, ... in the configuration
file) every WAL file goes to each of them; --repo N is refused. Synchronous: the
file is archived when every repository has it, else the error names the ones
that failed. Asynchronous: one queue per repository, so that one down never
holds up the others; past --archive-push-queue-max only the repositories that
lack a file drop it (each records its own drop).

${REPO_OPTIONS_HELP}${COMPRESS_OPTIONS_HELP}${ARCHIVE_PUSH_ASYNC_HELP}
Exit status: 0 stored (or already stored with the same content, or dropped by
the queue limit), 1-9 on failure (PostgreSQL retries the file later): 2 invalid
options, 5 the file or the repository cannot be used (another cluster's WAL, a
segment under another segment's name, different content already archived), 6 no
such stanza, 9 the object store kept failing, 1 an unexpected error (docs/exit-codes.md).
`;

export async function archivePushCommand(argv: string[]): Promise<number> {
  let syncLimit = false;
  try {
    const o = parseRepoOptions('archive-push', argv);
    syncLimit = !o.archiveAsync && o.queueMaxBytes !== null && o.pusherPgWal === undefined;
    if (o.help) {
      process.stdout.write(HELP);
      return ExitCode.Ok;
    }
    if (o.repoSelected !== undefined) {
      throw usageError(
        `archive-push stores every WAL file in every configured repository: --repo ${o.repoSelected} is not accepted`,
        'remove --repo N from archive_command (pgBackRest refuses it too); to archive into fewer repositories, configure fewer',
      );
    }
    const push = { compression: o.compression, level: o.level };
    if (o.pusherPgWal !== undefined) {
      const req: ArchivePushRequest = { repos: await openRepositories(o.repos), stanza: o.stanza, push };
      await runBackgroundPusher(req, { ...asyncSettings(o), processMax: o.processMax, queueMaxBytes: o.queueMaxBytes }, o.pusherPgWal);
      return ExitCode.Ok;
    }
    const [source, ...extra] = o.positionals;
    if (!source || extra.length > 0) throw usageError('give exactly one WAL file path (%p)');
    if (o.archiveAsync) {
      const repos = o.repos.map((r) => ({ index: r.index, location: describeRepository(r) }));
      const remote = o.repos.some((r) => r.type !== 'posix');
      const { dropped, warning } = await archivePushAsync({ repos, remote, stanza: o.stanza, push, open: () => openRepositories(o.repos) }, asyncSettings(o), source);
      if (warning !== undefined) printLine(`warning: ${warning}`);
      // Goes to the server log: the one place a DBA is sure to look.
      if (dropped !== null) printError(new PgpitrError('ERR_STORAGE', dropped, { hint: 'pgpitr info and pgpitr check list what is missing from the archive' }));
      return ExitCode.Ok;
    }
    const outcomes = await archivePush({ repos: await openRepositories(o.repos), stanza: o.stanza, push }, source);
    for (const { repository, outcome } of outcomes) {
      if (outcome.status !== 'already-archived') continue;
      const where = outcomes.length === 1 ? '' : ` in ${repoTitle(repository)}`;
      if (outcome.forkSegment) printLine(`warning: WAL segment "${basename(source)}" is the one a promotion ended its timeline in, and all its WAL is archived${where} (${outcome.path}); the archive's ${basename(source)} is the old primary's, which went on writing that timeline after the fork: it stays, and this copy is not stored`);
      else if (outcomes.length === 1) printLine(`warning: WAL file "${source}" is already archived with the same content; nothing to do`);
      else printLine(`warning: WAL file "${source}" is already archived in ${repoTitle(repository)} with the same content; nothing to do there`);
    }
    return ExitCode.Ok;
  } catch (e) {
    printError(e);
    // Said where a DBA who set it looks when pg_wal grows: the limit is the asynchronous queue's.
    if (syncLimit) {
      printLine('warning: archive-push-queue-max is set but applies with archive-async only: in synchronous mode nothing is dropped, and pg_wal keeps every segment until archiving succeeds (set archive-async=y for the limit to hold)');
    }
    const code = exitCodeFor((e as PgpitrError).code);
    return code > 125 ? ExitCode.Failure : code;
  }
}

function asyncSettings(o: RepoOptions) {
  return { spoolPath: o.spoolPath, timeoutMs: o.archiveTimeoutMs, optionArgs: o.optionArgs };
}
