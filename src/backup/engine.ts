// The base backup engine: connects, starts BASE_BACKUP (and a WAL stream for
// -X stream), feeds the archives to a sink, and only then declares the backup
// complete. On any failure it drops the connections (the server aborts its
// backup when the WAL sender goes away), drops a slot it created and removes
// what it wrote, unless told to keep it (-n).

import { PgpitrError, ServerError } from '../common/errors.js';
import { Session, quoteIdent } from '../protocol/session.js';
import { runBaseBackup } from '../protocol/base-backup-stream.js';
import type { BaseBackupEvents, TablespaceHeader } from '../protocol/base-backup-stream.js';
import { buildBaseBackupCommand } from '../protocol/base-backup-command.js';
import type { WalStream } from '../protocol/wal-stream.js';
import { describeTarget } from '../protocol/conninfo.js';
import { noticeText } from '../protocol/notice-text.js';
import { parseLsn, formatLsn } from '../postgres/lsn.js';
import type { BaseBackupOptions } from './options.js';
import type { BackupReporter } from './reporter.js';
import { ProgressTracker } from './progress-tracker.js';
import type { ServerProgressWatcher } from './server-progress.js';
import { OutputDirs } from './target-dir.js';
import { StateFile } from './state-file.js';
import { checkResumable } from './resumable-target.js';
import { interrupted } from './interrupted.js';
import { resolve } from 'node:path';
import type { BackupSink } from './sink.js';
import type { StreamedWal } from './wal/streamed-wal.js';
import { createModesFor } from '../postgres/data-dir-mode.js';
import { supportedVersionOrThrow } from '../postgres/versions.js';
import { checkOpenFileLimit } from './parallel/open-file-limit.js';
import { dropSlot, openWalSession, startWalStream, streamsWal } from './wal-session.js';
import type { WalSession } from './wal-session.js';

/**
 * The modules a run needs only once the server has answered: the sink for its
 * format (with its codecs), the WAL receiver, the progress watcher. Only those
 * this run uses are loaded (a tar backup does not load the plain sink, nor -P's
 * watcher), and they load as the connection is made instead of before the command
 * can start. Start-up is a visible part of a backup's time: pg_basebackup is
 * streaming 25 ms after it starts.
 */
function loadLater(opts: BaseBackupOptions) {
  const plain = opts.target.kind === 'directory' && opts.format === 'plain';
  const tar = !plain && (opts.target.kind === 'directory' || opts.target.kind === 'stdout');
  const stream = streamsWal(opts);
  const modules = {
    plainSink: plain ? import('./plain/plain-sink.js') : null,
    tarSink: tar ? import('./tar/tar-sink.js') : null,
    walStream: stream ? import('../protocol/wal-stream.js') : null,
    streamedWal: stream ? import('./wal/streamed-wal.js') : null,
    serverProgress: opts.progress ? import('./server-progress.js') : null,
  };
  // Awaited where used; a failure before then must not be reported as unhandled.
  for (const m of Object.values(modules)) m?.catch(() => {});
  return modules;
}

export interface BackupResult {
  startLsn: string;
  endLsn: string;
  timeline: number;
  /** The timeline of the end point (a standby's may be a later one, when it followed a promotion). */
  endTimeline: number;
  bytes: number;
  systemIdentifier: string;
  serverVersionNum: number;
  directory: string | null;
  /** With recordChecksumFailures: the page checksum failures met, as the warnings named them (none: []). */
  checksumFailures: string[];
}

export async function takeBaseBackup(opts: BaseBackupOptions, reporter: BackupReporter, signal?: AbortSignal): Promise<BackupResult> {
  const tracker = new ProgressTracker(reporter);
  const dirs = new OutputDirs();
  dirs.sync = !opts.noSync;
  const sessions: Session[] = [];
  let state: StateFile | null = null;
  let sink: BackupSink | null = null;
  let createdSlot: string | null = null;
  let walError: unknown = null;
  let watcher: ServerProgressWatcher | null = null;
  /** -j: what to do once the backup is whole (run-parallel.ts: the resume journal goes). */
  let whole: (() => void) | null = null;
  let resumedSystem: string | undefined;
  /** What else holds the backup open on the server (the parallel backup's SQL session). */
  const closers: (() => void)[] = [];
  const abortAll = () => {
    sessions.forEach((s) => s.abort());
    closers.forEach((c) => c());
  };
  const onAbort = () => abortAll();
  /** The page checksum failures met (the server's warnings, or -j's readers'), in their words. */
  const checksumFailures: string[] = [];
  const onChecksumFailure = (message: string) => {
    state?.addChecksumFailure(message);
    checksumFailures.push(message);
  };
  signal?.addEventListener('abort', onAbort);
  const later = loadLater(opts);
  let previousUmask: number | undefined;

  let directory: string | null = null;
  // --resume: the directories besides the target the interrupted runs wrote into, and this run's.
  const dirsOf = { resumed: [] as string[], now: [] as string[] };
  /** Until then, the target holds only the state file: -n keeps nothing (pg_basebackup makes the directory once connected; a password prompt runs again). */
  let connected = false;
  try {
    // -j beyond what this process may open is refused before anything is written.
    if (opts.parallel) checkOpenFileLimit(opts.parallel.jobs);

    // 1. Where the backup goes; the state file says "running" from the start.
    if (opts.target.kind === 'directory') {
      let own: string[] = [];
      if (opts.resume) {
        ({ own, system: resumedSystem } = checkResumable(opts.target.path));
        dirsOf.resumed = own;
        dirs.keepContentsOf = new Set([resolve(opts.target.path), ...own]);
      }
      directory = dirs.prepare(opts.target.path, 'target directory');
      state = new StateFile(directory, opts.label, !opts.noSync);
      // The directories the interrupted runs wrote into stay this backup's, whatever this run does.
      state.update({ backup_format: opts.format, wal_method: opts.walMethod, ...(own.length > 0 ? { output_dirs: own } : {}), ...(resumedSystem !== undefined ? { system_identifier: resumedSystem } : {}) });
      state.write();
      // Recorded before anything is written there: a rerun with --resume takes only those as they are.
      const stateFile = state;
      dirs.onPrepared = (others) => {
        dirsOf.now = others;
        stateFile.update({ output_dirs: [...new Set([...own, ...others])] });
        stateFile.write();
      };
    }

    // 2. The replication connection.
    reporter.info(`connecting to ${describeTarget(opts.connection)}`);
    const main = await Session.open(opts.connection, 'physical', 'replication connection');
    connected = true;
    sessions.push(main);
    main.onNotice = (n) => {
      reporter.serverNotice(noticeText(n));
      if (n.message && /checksum verification fail/.test(n.message)) onChecksumFailure(n.message);
    };
    if (signal?.aborted) throw interrupted(opts);
    supportedVersionOrThrow(main.serverVersionNum, opts);
    const ident = (await main.query('IDENTIFY_SYSTEM'))[0]?.rows[0];
    if (!ident) throw new PgpitrError('ERR_PROTOCOL', 'IDENTIFY_SYSTEM returned no row');
    const systemIdentifier = ident[0] ?? '';
    if (opts.expectSystemIdentifier !== undefined && systemIdentifier !== opts.expectSystemIdentifier) {
      throw new PgpitrError('ERR_TARGET', `the server is database system ${systemIdentifier}, the stanza is for system ${opts.expectSystemIdentifier}`, {
        hint: 'this connection reaches another cluster than the one the stanza records; check the connection options or --stanza',
      });
    }
    if (resumedSystem !== undefined && resumedSystem !== systemIdentifier) {
      throw new PgpitrError('ERR_TARGET', `the backup in "${directory}" is of database system ${resumedSystem}, the server is system ${systemIdentifier}`, { hint: 'resume it from the cluster it was taken from, or take a new backup into another directory' });
    }
    state?.update({ server_version: main.serverVersionNum, system_identifier: systemIdentifier });

    // What we create takes the source's modes (group access with initdb -g), as with pg_basebackup.
    const modes = createModesFor((await main.query('SHOW data_directory_mode'))[0]?.rows[0]?.[0]);
    // Until the end of this run only: `backup` goes on writing the repository in this process.
    previousUmask ??= process.umask(modes.umask);
    dirs.setModes(modes);
    state?.setMode(modes.file);

    if (opts.progress) {
      const { ServerProgressWatcher } = await later.serverProgress!;
      watcher = new ServerProgressWatcher(opts.connection, tracker);
      await watcher.start(main.backendPid);
    }

    // 3. Slots.
    if (opts.createSlot && opts.slot) {
      reporter.info(`creating replication slot "${opts.slot}"`);
      await main.query(`CREATE_REPLICATION_SLOT ${quoteIdent(opts.slot)} PHYSICAL RESERVE_WAL`);
      createdSlot = opts.slot;
    } else if (opts.slot && streamsWal(opts) && main.serverVersionNum >= 150000) {
      const r = (await main.query(`READ_REPLICATION_SLOT ${quoteIdent(opts.slot)}`))[0]?.rows[0];
      if (!r || r[0] === null) {
        throw new PgpitrError('ERR_NOT_FOUND', `replication slot "${opts.slot}" does not exist`, {
          hint: `create it with -C/--create-slot, or SELECT pg_create_physical_replication_slot('${opts.slot}')`,
        });
      }
    }

    if (opts.sink) {
      sink = opts.sink;
    } else if (later.plainSink) {
      const { PlainSink } = await later.plainSink;
      sink = new PlainSink(directory!, withDbname(opts, main.serverVersionNum), dirs, { onFile: (n) => tracker.file(n), warn: (m) => reporter.warn(m) });
    } else if (later.tarSink) {
      const { TarSink } = await later.tarSink;
      sink = new TarSink(directory, withDbname(opts, main.serverVersionNum), modes.file);
    }

    // 4. BASE_BACKUP, and the WAL stream once we know where the backup starts.
    let wal: { stream: WalStream; receiver: StreamedWal; task: Promise<unknown> } | null = null;
    let startLsn = '';
    let endLsn = '';
    let timeline = 0;
    let endTimeline = 0;
    const command = buildBaseBackupCommand(
      {
        label: opts.label,
        progress: opts.progress && opts.estimateSize,
        fastCheckpoint: opts.fastCheckpoint,
        includeWal: opts.walMethod === 'fetch',
        waitForWalArchive: opts.serverWaitsForArchive ?? opts.walMethod === 'none',
        maxRateKb: opts.maxRateKb,
        tablespaceMap: opts.format === 'tar',
        verifyChecksums: opts.verifyChecksums,
        manifest: !opts.manifest ? 'no' : opts.manifestForceEncode ? 'force-encode' : 'yes',
        manifestChecksums: opts.manifestChecksums,
        target: opts.target.kind === 'server' ? { kind: 'server', detail: opts.target.path } : opts.target.kind === 'blackhole' ? { kind: 'blackhole' } : undefined,
        serverCompression: opts.compression?.location === 'server' ? { algorithm: opts.compression.algorithm, detail: opts.compression.detail } : undefined,
      },
      main.serverVersionNum,
    );
    reporter.info(opts.fastCheckpoint ? 'initiating base backup, requesting a fast checkpoint' : 'initiating base backup, waiting for checkpoint to complete');
    tracker.phase('waiting for checkpoint to finish');

    let walSession: WalSession | null = null;
    const events: BaseBackupEvents = {
      started: async (lsn, tli) => {
        startLsn = lsn;
        timeline = tli;
        reporter.info(`checkpoint completed; write-ahead log start point: ${lsn} on timeline ${tli}`);
        state?.update({ start_lsn: lsn, timeline: tli });
        state?.write(false); // between the checkpoint and the data: no fsync there
        if (streamsWal(opts) && sink) {
          wal = await startWalStream(
            opts,
            Promise.all([later.walStream!, later.streamedWal!]),
            sink,
            sessions,
            lsn,
            tli,
            reporter,
            (e) => {
              walError = e;
              abortAll();
            },
            walSession,
            systemIdentifier,
          );
        }
      },
      tablespaces: (list: TablespaceHeader[]) => {
        const total = list.every((t) => t.sizeKb !== null) ? Number(list.reduce((a, t) => a + (t.sizeKb ?? 0n), 0n)) * 1024 : null;
        tracker.totals(opts.progress && opts.estimateSize ? total : null, list.length);
        sink?.prepareTablespaces(list);
      },
      tarBegin: (name, ts) => {
        tracker.phase('streaming database files');
        // -j reads the files itself: no tar file is received from the server.
        reporter.info(opts.parallel ? `copying ${ts?.location ? `tablespace ${ts.location}` : 'the data directory'} with ${opts.parallel.jobs} readers` : `receiving tar file "${name}"${ts?.location ? ` (tablespace ${ts.location})` : ''}`);
        return sink?.tarBegin(name, ts);
      },
      tarData: (chunk, read) => {
        // What the server compressed is not counted here: its own count (serverProgress) is in uncompressed bytes.
        if (opts.compression?.location !== 'server') tracker.addBytes(read ?? chunk.length);
        return sink?.tarData(chunk);
      },
      tarEnd: async () => {
        await sink?.tarEnd();
        tracker.tablespaceDone();
      },
      manifestBegin: () => {
        tracker.phase('waiting for wal archiving to finish');
        return sink?.manifestBegin();
      },
      manifestData: (chunk) => sink?.manifestData(chunk),
      manifestEnd: async () => {
        await sink?.manifestEnd();
      },
      progress: (bytes) => tracker.serverProgress(Number(bytes)),
      finished: (lsn, tli) => {
        endLsn = lsn;
        endTimeline = tli;
        opts.onServerStopped?.();
        reporter.info(`write-ahead log end point: ${lsn}`);
        state?.update({ stop_lsn: lsn, ...(tli !== timeline ? { stop_timeline: tli } : {}) });
      },
    };
    if (opts.parallel) {
      // Our own readers: the backup is held by an SQL session, closed with the others on failure.
      // The WAL stream's slot is made first: it holds the WAL from before the backup's checkpoint,
      // which another backup's checkpoint would otherwise remove before our stream starts
      // (BASE_BACKUP's stream has the same window; two parallel backups at once hit it).
      if (streamsWal(opts) && sink) walSession = await openWalSession(opts, sessions, reporter, systemIdentifier);
      sink?.prepare?.();
      const { runParallel } = await import('./parallel/run-parallel.js');
      whole = await runParallel(
        {
          opts,
          main,
          sink,
          tracker,
          reporter,
          systemIdentifier,
          directory,
          fileMode: dirs.modes.file,
          onClose: (close) => closers.push(close),
          onChecksumFailure,
        },
        events,
      );
    } else {
      // No sink (the server keeps the backup) keeps nothing; a sink that writes or copies what
      // it is given lets the stream read into the same few buffers again (socket-reads.ts).
      const lent = sink === null || sink.lendTarData?.() === true;
      const backup = runBaseBackup(main, command, events, lent);
      // BASE_BACKUP is sent (runBaseBackup does that before it first waits): while the
      // server runs its checkpoint, load what writing the data will need.
      sink?.prepare?.();
      // The server says "checksum verification failure" (XX001) after the whole backup, its end included.
      await backup.catch((e: unknown) => {
        if (!(opts.recordChecksumFailures && isChecksumFailure(e) && endLsn !== '')) throw e;
        // Its own words too: with client_min_messages above warning, the per-block warnings never came.
        checksumFailures.push((e as Error).message);
      });
    }
    await watcher?.stop();
    watcher = null;
    main.close();

    // 5. The WAL needed to make the backup consistent.
    const w = wal as { stream: WalStream; receiver: StreamedWal; task: Promise<unknown> } | null;
    if (w) {
      reporter.info('waiting for background process to finish streaming ...');
      w.stream.stopWhenReached(parseLsn(endLsn));
      await w.task;
      if (walError) throw walError;
      // The server may end the stream early (a timeline it ended without naming the next):
      // never call a backup complete without its WAL.
      if (w.receiver.flushed() < parseLsn(endLsn)) {
        // The segment being received is abandoned: a store writing it (a repository set) would wait for its bytes forever.
        w.receiver.abort();
        throw new PgpitrError('ERR_PROTOCOL', `the WAL stream ended at ${formatLsn(w.receiver.flushed())}, before the end of the backup at ${endLsn} (the server ended the stream there)`, {
          hint: 'the backup is not usable; take another one once the server stays on one timeline',
        });
      }
      await w.receiver.finish();
    }

    // 6. Durable, then complete.
    tracker.phase('syncing files');
    if (sink) {
      if (!opts.noSync) reporter.info('syncing data to disk ...');
      await sink.finish();
    }
    // A SIGINT/SIGTERM that came while the files were synced (nothing left to abort by then) is
    // honoured all the same: the run was interrupted, and is never reported complete.
    if (signal?.aborted) throw interrupted(opts);
    const bytes = tracker.snapshot.bytesDone;
    whole?.();
    state?.finish('complete', { bytes });
    for (const d of dirsOf.resumed) if (!dirsOf.now.includes(d)) reporter.warn(`"${d}", which the interrupted run wrote into, is not this backup's (another -T or --waldir this time): left as it was; remove it if nothing else needs it`);
    // Only once the state file says complete (its write can fail: a full disk): a slot made with -C stays, as the user asked.
    createdSlot = null;
    tracker.phase('complete');
    reporter.info('base backup completed');
    return { startLsn, endLsn, timeline, endTimeline: endTimeline || timeline, bytes, systemIdentifier, serverVersionNum: main.serverVersionNum, directory, checksumFailures };
  } catch (err) {
    const error = signal?.aborted ? interrupted(opts) : walError && !(err instanceof ServerError) ? walError : err;
    abortAll();
    await watcher?.stop();
    sink?.abort();
    if (createdSlot) await dropSlot(opts, createdSlot, reporter);
    // As pg_basebackup: after a page checksum failure the data may be salvageable, keep it.
    const checksumFailure = isChecksumFailure(error);
    if (opts.resume && !directory && !checksumFailure) {
      // --resume refused before anything was written (nothing to resume there): left as it was.
    } else if ((opts.noClean && connected) || checksumFailure || opts.resume) {
      if (checksumFailure && directory) reporter.warn(`checksum error occurred; keeping "${directory}" with its state file saying failed: the backup is NOT usable as it is`);
      else if (opts.resume) reporter.warn(`keeping "${directory}" for another --resume; the backup is NOT usable as it is`);
      else reporter.warn('keeping what was written (--no-clean); the backup is NOT usable');
      // After a signal the state file stays 'running': interrupted once this process is gone (as after a kill).
      try {
        if (!signal?.aborted) state?.finish('failed', { error: (error as Error).message });
      } catch (e) {
        reporter.warn(`could not record the failure in ${state?.path}: ${(e as Error).message}`);
      }
    } else {
      dirs.cleanup((m) => reporter.info(m));
    }
    throw error;
  } finally {
    if (previousUmask !== undefined) process.umask(previousUmask);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** -R on a server of 17 or later names the database given, as pg_basebackup 17+. */
function withDbname(opts: BaseBackupOptions, serverVersionNum: number): BaseBackupOptions {
  return opts.writeRecoveryConf && serverVersionNum >= 170000 && opts.connection.dbname !== undefined ? { ...opts, recoveryConfDbname: opts.connection.dbname } : opts;
}

/** The server ends a backup that met page checksum failures with ERRCODE_DATA_CORRUPTED. */
function isChecksumFailure(e: unknown): boolean {
  return (e instanceof ServerError && e.sqlState === 'XX001') || (e instanceof Error && e.name === 'ChecksumFailureError');
}
