// `pgpitr archive-push %p` for archive_command: stores one WAL file in the
// stanza's archive. Idempotent: the same content already archived succeeds
// with a warning; different content fails. Exit codes stay between 1 and 125
// so that a failure never makes PostgreSQL's archiver restart.
// With --archive-async it answers from the spool of the background pusher
// (archiving/async-push.ts), which --pusher runs (archiving/pusher.ts).

import { dirname, resolve } from 'node:path';
import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import type { RepoOptions } from '../repo-options.js';
import { readStanza } from '../../repo/stanza.js';
import { openRepository } from '../../repo/open-repository.js';
import { archiveWalFile } from '../../wal/archive-wal-file.js';
import { PushSpool, failureText } from '../../archiving/spool.js';
import { runAsOnlyOne } from '../../archiving/background.js';
import { pushThroughSpool, spawnPusher, PUSHER_LOCK } from '../../archiving/async-push.js';
import { runPusher } from '../../archiving/pusher.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { printError, printLine } from '../output.js';
import { PgpitrError, usageError } from '../../common/errors.js';

const HELP = `pgpitr archive-push stores a WAL file in the repository (for archive_command).

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

${REPO_OPTIONS_HELP}
Exit status: 0 stored (or already stored with the same content, or dropped by
the queue limit), 2-7 on failure (PostgreSQL retries the file later): 2 invalid
options, 5 the file or the repository cannot be used (another cluster's WAL, a
segment under another segment's name, different content already archived).
`;

export async function archivePushCommand(argv: string[]): Promise<number> {
  try {
    const o = parseRepoOptions('archive-push', argv);
    if (o.help) {
      process.stdout.write(HELP);
      return ExitCode.Ok;
    }
    if (o.pusherPgWal !== undefined) return await runBackgroundPusher(o, o.pusherPgWal);
    const [source, ...extra] = o.positionals;
    if (!source || extra.length > 0) throw usageError('give exactly one WAL file path (%p)');
    if (o.archiveAsync) return await pushAsync(o, source);
    const repo = openRepository(o.repo);
    const outcome = await archiveWalFile(repo, await readStanza(repo, o.stanza), source, { compression: o.compression, level: o.level });
    if (outcome.status === 'already-archived') {
      printLine(`warning: WAL file "${source}" is already archived with the same content; nothing to do`);
    }
    return ExitCode.Ok;
  } catch (e) {
    printError(e);
    const code = exitCodeFor((e as PgpitrError).code);
    return code > 125 ? ExitCode.Failure : code;
  }
}

async function pushAsync(o: RepoOptions, source: string): Promise<number> {
  const spool = PushSpool.open(o.spoolPath, o.stanza);
  const pgWal = resolve(dirname(source));
  const result = await pushThroughSpool({
    walPath: source,
    spool,
    timeoutMs: o.archiveTimeoutMs,
    startPusher: (logPath) => spawnPusher(o.optionArgs, pgWal, logPath),
    settings: pusherSettings(o.optionArgs, pgWal),
    storeHere: async () => {
      const repo = openRepository(o.repo);
      await archiveWalFile(repo, await readStanza(repo, o.stanza), source, { compression: o.compression, level: o.level });
    },
  });
  if (result.kind === 'dropped') {
    // Goes to the server log: the one place a DBA is sure to look.
    printError(new PgpitrError('ERR_STORAGE', result.message, { hint: 'pgpitr info and pgpitr check list what is missing from the archive' }));
  }
  return ExitCode.Ok;
}

async function runBackgroundPusher(o: RepoOptions, pgWal: string): Promise<number> {
  const spool = PushSpool.open(o.spoolPath, o.stanza);
  const settings = pusherSettings(o.optionArgs.filter((a) => !a.startsWith('--pusher=')), pgWal);
  await runAsOnlyOne(spool.dir, PUSHER_LOCK, 'archive-push (background pusher)', settings, async (log) => {
    const stop = new AbortController();
    process.once('SIGTERM', () => {
      log('SIGTERM: stopping once the files being stored are done');
      stop.abort();
    });
    try {
      const repo = openRepository(o.repo);
      await runPusher({
        repo,
        stanza: await readStanza(repo, o.stanza),
        pgWal,
        spool,
        push: { compression: o.compression, level: o.level },
        processMax: o.processMax,
        queueMaxBytes: o.queueMaxBytes,
        idleExitMs: Number(process.env['PGPITR_PUSHER_IDLE_MS'] ?? 10_000),
        log,
        signal: stop.signal,
      });
    } catch (e) {
      spool.writeFatal(failureText(e as PgpitrError)); // for the archive_command waiting on us
      throw e;
    }
  });
  return ExitCode.Ok;
}

/** What identifies a pusher's configuration: its options and the pg_wal it serves. */
function pusherSettings(optionArgs: string[], pgWal: string): string[] {
  return [...optionArgs, pgWal];
}
