// The WAL a base backup streams (-X stream, and -X fetch with -j): the
// replication session with its temporary slot, opened before the backup
// starts when our own readers copy the files, and the stream into the sink's
// segment store once the start LSN is known, along the next timeline when the
// server ends one; and dropping a slot -C made.

import { Session, quoteIdent } from '../protocol/session.js';
import { noticeText } from '../protocol/notice-text.js';
import { parseLsn, segmentNumber, segmentStart, formatLsn, timelineHistoryFileName } from '../postgres/lsn.js';
import { parseSizeSetting } from '../postgres/settings.js';
import { PgpitrError, ServerError } from '../common/errors.js';
import type { BaseBackupOptions } from './options.js';
import type { BackupReporter } from './reporter.js';
import type { BackupSink } from './sink.js';

/**
 * -X stream; and -X fetch with -j, where no BASE_BACKUP can carry the WAL: our readers
 * cannot copy segments the server may recycle, so they are streamed as with -X stream.
 */
export function streamsWal(opts: BaseBackupOptions): boolean {
  return opts.walMethod === 'stream' || (opts.walMethod === 'fetch' && opts.parallel !== undefined);
}

export interface WalSession {
  session: Session;
  slot: string | undefined;
  segmentSize: number;
}

/**
 * The WAL streaming connection, with its temporary slot (unless -S or --no-slot). Of the backup's
 * database system, as pg_basebackup checks: a second connection to a name or address that moved
 * (a virtual IP, a proxy switched over) would stream another system's WAL beside the files.
 */
export async function openWalSession(opts: BaseBackupOptions, sessions: Session[], reporter: BackupReporter, systemIdentifier: string): Promise<WalSession> {
  const session = await Session.open(opts.connection, 'physical', 'WAL streaming connection');
  sessions.push(session);
  session.onNotice = (n) => reporter.serverNotice(noticeText(n));
  const theirs = (await session.query('IDENTIFY_SYSTEM'))[0]?.rows[0]?.[0] ?? '';
  if (theirs !== systemIdentifier) {
    throw new PgpitrError('ERR_SERVER', `the WAL streaming connection reached database system ${theirs}, the backup is of system ${systemIdentifier}`, {
      hint: 'the connection settings name another server for a second connection (a virtual IP or proxy that switched over?): connect to the server itself',
    });
  }
  const segText = (await session.query('SHOW wal_segment_size'))[0]?.rows[0]?.[0] ?? '16MB';
  const segmentSize = parseSizeSetting(segText);
  let slot = opts.slot;
  if (!slot && !opts.noSlot) {
    slot = `pgpitr_${session.backendPid}`;
    await session.query(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)} TEMPORARY PHYSICAL RESERVE_WAL`);
    reporter.info(`created temporary replication slot "${slot}"`);
  }
  return { session, slot, segmentSize };
}

export async function startWalStream(
  opts: BaseBackupOptions,
  modules: Promise<[typeof import('../protocol/wal-stream.js'), typeof import('./wal/streamed-wal.js')]>,
  sink: BackupSink,
  sessions: Session[],
  startLsn: string,
  timeline: number,
  reporter: BackupReporter,
  onFailure: (e: unknown) => void,
  opened: WalSession | null,
  systemIdentifier: string,
) {
  const [{ WalStream }, { StreamedWal }] = await modules;
  const { session, slot, segmentSize } = opened ?? (await openWalSession(opts, sessions, reporter, systemIdentifier));
  const start = segmentStart(segmentNumber(parseLsn(startLsn), segmentSize), segmentSize);
  const receiver = new StreamedWal(sink.walStore(segmentSize), timeline, segmentSize, start);
  if (timeline > 1) await historyBeside(session, receiver, timeline, reporter);
  const stream = new WalStream(session);
  reporter.info(`starting background WAL receiver at ${formatLsn(start)}`);
  const follow = async () => {
    let from = start;
    let tli = timeline;
    for (;;) {
      const end = await stream.run({ slot, start: from, timeline: tli, statusIntervalMs: opts.statusIntervalMs }, receiver);
      // The server ended the timeline before the backup's end (a standby whose upstream was
      // promoted: right after a failover its backups start on the timeline before): as
      // pg_basebackup, the stream goes on along the next one, from the start of the segment
      // where it branches, with its history file. The backup's end decides where it stops.
      if (end.nextTimeline === undefined || stream.stopRequested(end.received)) return end;
      const next = end.nextTimeline;
      reporter.info(`the server's timeline ${tli} ends at ${next.start}: WAL streaming goes on along timeline ${next.timeline}`);
      from = segmentStart(segmentNumber(parseLsn(next.start), segmentSize), segmentSize);
      tli = next.timeline;
      await receiver.switchTimeline(tli, from);
      await historyBeside(session, receiver, tli, reporter);
    }
  };
  const task = follow()
    .then((end) => {
      session.close();
      return end;
    })
    .catch((e) => {
      onFailure(e);
      receiver.abort();
    });
  return { stream, receiver, task };
}

/**
 * As pg_basebackup: the history file of the timeline the backup starts on goes beside its WAL, so
 * that the restored copy knows its timeline's ancestors (promoted, it writes a history file naming
 * them; without it, a later recovery to the new timeline from an older backup is refused). A
 * server without it (a standby restored from an archive may lack its own timeline's) is a warning.
 */
async function historyBeside(session: Session, receiver: { whole(name: string, data: Buffer): Promise<void> }, timeline: number, reporter: BackupReporter): Promise<void> {
  let content: string;
  try {
    content = (await session.queryBytes(`TIMELINE_HISTORY ${timeline}`))[0]?.rows[0]?.[1] ?? '';
  } catch (e) {
    if (!(e instanceof ServerError && e.sqlState === '58P01')) throw e;
    reporter.warn(`the server has no history file for timeline ${timeline} (${e.message}); the backup's WAL goes without it`);
    return;
  }
  await receiver.whole(timelineHistoryFileName(timeline), Buffer.from(content, 'latin1')); // the server's bytes (queryBytes)
}

export async function dropSlot(opts: BaseBackupOptions, slot: string, reporter: BackupReporter): Promise<void> {
  try {
    const s = await Session.open(opts.connection, 'physical', 'replication connection');
    try {
      await s.query(`DROP_REPLICATION_SLOT ${quoteIdent(slot)} WAIT`);
      reporter.info(`dropped replication slot "${slot}" created by this run`);
    } finally {
      s.close();
    }
  } catch (e) {
    reporter.warn(`could not drop replication slot "${slot}": ${(e as Error).message}; drop it with SELECT pg_drop_replication_slot('${slot}')`);
  }
}
