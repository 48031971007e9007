// `pgpitr archive-get %f %p` for restore_command: fetches, decompresses and
// verifies one WAL file. Exit 1 means "the repository is healthy and does not
// hold this file" (recovery then knows it reached the end of the archive).
// PostgreSQL takes every exit status from 1 to 125 for that, so every other
// failure (bad options, unknown stanza, unreachable repository, damaged file,
// a bug) exits ArchiveGetError (above 125): recovery stops, with our message
// in the server log, instead of ending early and promoting without the rest.
// With --archive-async it takes the file from the prefetch spool when the
// background fetcher (archiving/prefetch.ts) already has it, and keeps that
// fetcher running ahead of recovery.

import { join } from 'node:path';
import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import type { RepoOptions } from '../repo-options.js';
import { restoreWalFile } from '../../wal/archive-wal-file.js';
import { readStanza, readStanzaWithArchive } from '../../repo/stanza.js';
import { openRepository } from '../../repo/open-repository.js';
import { liveLockHolder } from '../../repo/lock.js';
import { PosixStorage } from '../../storage/posix/posix-storage.js';
import { walFileKind } from '../../repo/layout.js';
import { openPrefetchDir, noteRequest, takePrefetched, readFetchFailure, clearFetchFailure, runFetcher } from '../../archiving/prefetch.js';
import { startDetached, runAsOnlyOne } from '../../archiving/background.js';
import { ExitCode, failureExitCode } from '../exit-codes.js';
import { printError } from '../output.js';
import { PgpitrError, usageError } from '../../common/errors.js';

const HELP = `pgpitr archive-get fetches a WAL file from the repository (for restore_command).

Usage:
  restore_command = 'pgpitr archive-get --repo PATH --stanza NAME %f "%p"'

Asynchronous prefetch, for fast recovery: a background process keeps the next
segments fetched, verified and synced in the spool; the shell move in front
hands those over without starting pgpitr:
  restore_command = 'mv SPOOL/NAME/archive-get/%f "%p" 2>/dev/null || pgpitr archive-get --archive-async --spool-path SPOOL --repo PATH --stanza NAME %f "%p"'

${REPO_OPTIONS_HELP}
Exit status: 0 fetched, 1 not in the archive (the repository and stanza are
healthy), ${ExitCode.ArchiveGetError} any other failure: PostgreSQL then stops recovery instead of
ending it early (see docs/exit-codes.md).
`;

const FETCHER_LOCK = 'fetcher';

export async function archiveGetCommand(argv: string[]): Promise<number> {
  try {
    const o = parseRepoOptions('archive-get', argv);
    if (o.help) {
      process.stdout.write(HELP);
      return ExitCode.Ok;
    }
    if (o.fetcher) return await runBackgroundFetcher(o);
    const [name, dest, ...extra] = o.positionals;
    if (!name || !dest || extra.length > 0) throw usageError('give the WAL file name (%f) and the destination path (%p)');
    const repo = openRepository(o.repo);
    await readStanzaWithArchive(repo, o.stanza); // a stanza or repository that is not there is an error, never "not found"
    let prefetchDir = null;
    if (o.archiveAsync && walFileKind(name) === 'segment') {
      prefetchDir = openPrefetchDir(o.spoolPath, o.stanza);
      noteRequest(prefetchDir, name);
      await ensureFetcher(o, prefetchDir);
      if (takePrefetched(prefetchDir, name, dest)) return ExitCode.Ok;
    }
    if (await restoreWalFile(repo, o.stanza, name, dest)) {
      if (prefetchDir) clearFetchFailure(prefetchDir, name);
      return ExitCode.Ok;
    }
    const fetchFailure = prefetchDir ? readFetchFailure(prefetchDir, name) : null;
    if (fetchFailure) {
      // The background fetcher met it damaged or unreadable, and now it is gone: not "the end of the archive".
      throw new PgpitrError('ERR_STORAGE', `WAL file "${name}" could not be fetched (${fetchFailure.message}) and is no longer in the archive`, {
        hint: `${fetchFailure.hint ?? 'find what changed the archive during recovery'}; to end recovery before this file instead, remove ${join(prefetchDir!, name)}.error`,
      });
    }
    return ExitCode.ArchiveNotFound;
  } catch (e) {
    printError(e);
    return failureExitCode('archive-get', (e as PgpitrError).code);
  }
}

async function ensureFetcher(o: RepoOptions, dir: string): Promise<void> {
  if (await liveLockHolder(new PosixStorage(dir), `${FETCHER_LOCK}.lock`)) return;
  startDetached(['archive-get', ...o.optionArgs, '--fetcher'], join(dir, 'fetcher.log'));
}

async function runBackgroundFetcher(o: RepoOptions): Promise<number> {
  const dir = openPrefetchDir(o.spoolPath, o.stanza);
  await runAsOnlyOne(dir, FETCHER_LOCK, 'archive-get (background fetcher)', undefined, async (log) => {
    const repo = openRepository(o.repo);
    const stanza = await readStanza(repo, o.stanza);
    await runFetcher({
      repo,
      stanza: o.stanza,
      segmentSize: stanza.wal_segment_size,
      dir,
      window: Math.max(1, Math.floor(o.getQueueMaxBytes / stanza.wal_segment_size)),
      processMax: o.processMax,
      idleExitMs: Number(process.env['PGPITR_FETCHER_IDLE_MS'] ?? 10_000),
      log,
    });
  });
  return ExitCode.Ok;
}
