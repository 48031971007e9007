// `pgpitr archive-push %p`: one WAL file into the stanza's archive, either
// here (wal/archive-wal-file.ts) or, with --archive-async, answered from the
// spool of the background pusher (archiving/async-push.ts), which
// runBackgroundPusher runs in its own process (archiving/pusher.ts). The
// asynchronous machinery is loaded only when asked for: archive_command
// starts one process per WAL file. Every configured repository gets every WAL
// file (wal/archive-to-all.ts; the pusher keeps one queue per repository).

import { dirname, resolve } from 'node:path';
import { readStanza } from '../repo/stanza.js';
import { repoTitle } from '../repo/numbered-repository.js';
import type { PushOptions } from '../repo/archive-store.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { archiveToAll } from '../wal/archive-to-all.js';
import type { RepoPushOutcome } from '../wal/archive-to-all.js';
import type { PgpitrError } from '../common/errors.js';

export interface ArchivePushRequest {
  /** Every configured repository, by N. */
  repos: NumberedRepository[];
  stanza: string;
  push: PushOptions;
}

/**
 * archive_command's asynchronous call: the repositories as configured (their N and location identify
 * the pusher's settings) and how to open them, which only a call that stores its own file does, after
 * it started the pusher: a call answered from the spool never loads a driver (the AWS SDK costs
 * ~200 ms), and a pusher started before that load is storing sooner.
 */
export interface AsyncPushCall {
  repos: RepoIdentity[];
  /** Some repository is on remote storage (object storage): its first request pays a driver's load and a connection. */
  remote: boolean;
  stanza: string;
  push: PushOptions;
  open(): Promise<NumberedRepository[]>;
}

/** What names a repository in a pusher's settings. */
export interface RepoIdentity {
  index: number;
  location: string;
}

export interface AsyncSettings {
  spoolPath: string;
  timeoutMs: number;
  /** The command's option arguments: the pusher is started with them. */
  optionArgs: string[];
}

/** Stores `source` (archive_command's %p) now, in every repository (or throws, naming those that failed). */
export async function archivePush(req: ArchivePushRequest, source: string): Promise<RepoPushOutcome[]> {
  return archiveToAll(req.repos, req.stanza, source, req.push);
}

/** Answers `source` from the background pusher's spool; a message when WAL was dropped by the queue limit. */
export async function archivePushAsync(req: AsyncPushCall, a: AsyncSettings, source: string): Promise<{ dropped: string | null; warning?: string }> {
  try {
    return await throughSpool(req, a, source);
  } catch (e) {
    // The spool cannot be written (its disk full, read-only, its permissions): no pusher can start
    // and no marker be written, while the repositories may be fine. This file is stored here, as
    // a synchronous push would (once stored, a marker that could not be written is no failure).
    if (!spoolRefused(e, a.spoolPath)) throw e;
    await archivePush({ repos: await req.open(), stanza: req.stanza, push: req.push }, source);
    return { dropped: null, warning: `the archive-push spool cannot be written (${(e as Error).message}): "${source}" was stored synchronously; free or fix spool-path ${a.spoolPath} (archive-push-queue-max cannot apply meanwhile)` };
  }
}

const SPOOL_ERRNOS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'ENOTDIR', 'ELOOP']);

/** A file system's refusal of a path under the spool (Node's errors carry the path). */
function spoolRefused(e: unknown, spoolPath: string): boolean {
  const root = resolve(spoolPath);
  return [e, (e as Error | undefined)?.cause].some((x) => {
    const { path, code } = (x ?? {}) as NodeJS.ErrnoException;
    return typeof path === 'string' && typeof code === 'string' && SPOOL_ERRNOS.has(code) && (path === root || path.startsWith(`${root}/`));
  });
}

async function throughSpool(req: AsyncPushCall, a: AsyncSettings, source: string): Promise<{ dropped: string | null }> {
  const { PushSpool } = await import('../archiving/spool.js');
  const { pushThroughSpool, spawnPusher } = await import('../archiving/async-push.js');
  const spool = PushSpool.open(a.spoolPath, req.stanza);
  const pgWal = resolve(dirname(source));
  const result = await pushThroughSpool({
    walPath: source,
    pgWal,
    spool,
    timeoutMs: a.timeoutMs,
    startPusher: (logPath) => spawnPusher(a.optionArgs, pgWal, logPath),
    settings: pusherSettings(a.optionArgs, pgWal, req.repos),
    repositories: req.repos.map((r) => `repo${r.index} ${r.location}`),
    // With several repositories, one of them down would make this store fail while the pusher
    // could take the file (it drops it for that repository past the queue limit): it waits for it.
    // On remote storage this store would pay the pusher's own start-up (the driver's load, a first
    // connection) while taking the CPUs the pusher needs: it waits for the pusher too.
    ...(req.repos.length === 1 && !req.remote
      ? {
          storeHere: async () => {
            await archivePush({ repos: await req.open(), stanza: req.stanza, push: req.push }, source);
          },
        }
      : {}),
  });
  return { dropped: result.kind === 'dropped' ? result.message : null };
}

/** The background pusher's process (--pusher=PG_WAL): runs until idle, unless another pusher runs. */
export async function runBackgroundPusher(
  req: ArchivePushRequest,
  a: AsyncSettings & { processMax: number; queueMaxBytes: number | null },
  pgWal: string,
): Promise<void> {
  const { PushSpool, failureText } = await import('../archiving/spool.js');
  const { runAsOnlyOne } = await import('../archiving/background.js');
  const { PUSHER_LOCK } = await import('../archiving/async-push.js');
  const { runPusher } = await import('../archiving/pusher.js');
  const { stanzasAtStart } = await import('../archiving/stanzas-at-start.js');
  const spool = PushSpool.open(a.spoolPath, req.stanza);
  const settings = pusherSettings(a.optionArgs.filter((arg) => !arg.startsWith('--pusher=')), pgWal, req.repos.map((r) => ({ index: r.index, location: r.repo.location })));
  const held = runAsOnlyOne(spool.dir, PUSHER_LOCK, 'archive-push (background pusher)', settings, async (log) => {
    const stop = new AbortController();
    process.once('SIGTERM', () => {
      log('SIGTERM: stopping once the files being stored are done');
      stop.abort();
    });
    try {
      // The markers here may be another cluster's (a spool shared): forgotten before this one's are written.
      spool.claimFor(pgWal);
      // A repository whose stanza cannot be read now (down, or not answering yet) is tried again
      // with each file; the pusher starts with the first that answers (stanzas-at-start.ts).
      const { known, each } = await stanzasAtStart(req.repos.map((r) => readStanza(r.repo, req.stanza)));
      for (const [i, x] of each.entries()) {
        if (x === null) log(`warning: ${repoTitle(req.repos[i]!)} has not answered yet; its stanza is read again with each file`);
        else if ('error' in x) log(`warning: ${repoTitle(req.repos[i]!)}: ${(x.error as Error).message}; tried again with each file`);
      }
      await runPusher({
        repos: req.repos,
        stanza: known,
        repoStanzas: each.map((x) => (x !== null && 'value' in x ? x.value : null)),
        pgWal,
        spool,
        push: req.push,
        processMax: a.processMax,
        queueMaxBytes: a.queueMaxBytes,
        idleExitMs: Number(process.env['PGPITR_PUSHER_IDLE_MS'] ?? 10_000),
        log,
        signal: stop.signal,
      });
    } catch (e) {
      spool.writeFatal(failureText(e as PgpitrError)); // for the archive_command waiting on us
      throw e;
    }
  });
  // Its lock could not even be written (the spool full, read-only): said to archive_command too.
  await held.catch((e: unknown) => {
    try {
      if (spool.readFatal() === null) spool.writeFatal(failureText(e as PgpitrError));
    } catch {
      /* the spool refuses that too: archive_command times out, pusher.log has the error */
    }
    throw e;
  });
}

/**
 * What identifies a pusher's configuration: its options, the pg_wal it serves and every repository
 * (so that one added in the configuration file restarts it). No secret: options never hold one
 * (refused on the command line), locations are describeRepository's.
 */
function pusherSettings(optionArgs: string[], pgWal: string, repos: RepoIdentity[]): string[] {
  return [...optionArgs, pgWal, ...repos.map((r) => `repo${r.index}=${r.location}`)];
}
