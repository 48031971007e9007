// A repository backup that relies on the archive is complete only once every segment from its
// start to its stop is there: waited for here, polling the stanza's archive.

import { PgpitrError } from '../../common/errors.js';
import { parseLsn, segmentFileName, segmentNumber } from '../../postgres/lsn.js';
import type { BackupRecord } from '../../repo/backup-set/record.js';

/** What the wait needs of the backup's request. */
export interface ArchiveWait {
  stanza: { wal_segment_size: number };
  archiveTimeoutMs: number;
  /** Which of these WAL file names the stanza's archive holds now. */
  archivedAmong(names: string[]): Promise<Set<string>>;
}

const ARCHIVE_POLL_FIRST_MS = 25;
/** How many segments before the backup's first are watched for an archiver working through a backlog. */
const BACKLOG_WATCHED = 256;
const ARCHIVE_POLL_MAX_MS = 500;

/**
 * The backup is usable only with every segment from its start to its stop in the archive: to
 * the segment holding the byte before the stop, as PostgreSQL's backup stop waits for (a stop on
 * a segment's first byte, a backup of a standby whose last replayed record was the primary's WAL
 * switch, needs the segment starting there only for a restore to a target: plan.ts; on a quiet
 * primary it may not come for hours). The server's backup stop does not wait for it
 * (serverWaitsForArchive: false): it would check once a second, and for the whole
 * archive_command, where this waits for this stanza's archive alone. archive-timeout is the
 * longest wait without a segment arriving, as pgBackRest's (an archiver some minutes behind
 * catches up segment by segment: a backup must not fail for the length of its backlog, so a
 * segment before the backup's own arriving counts too, for the 256 before its first).
 */
export async function waitForArchivedWal(req: ArchiveWait, r: BackupRecord, signal?: AbortSignal): Promise<void> {
  const seg = req.stanza.wal_segment_size;
  // --wal=included: the set holds its WAL up to the stop.
  if (r.wal === 'included') return;
  const first = segmentNumber(parseLsn(r.start_lsn!), seg);
  const last = segmentNumber(parseLsn(r.stop_lsn!) - 1n, seg);
  let deadline = Date.now() + req.archiveTimeoutMs;
  let pause = ARCHIVE_POLL_FIRST_MS;
  let stillMissing = Infinity;
  // Segments before the backup's own that are not archived yet: an archiver behind stores them
  // first, and each one it stores is progress as much as one of the backup's (listed with them:
  // the same directories, mostly).
  const backlog: string[] = [];
  for (let s = first - BigInt(Math.min(BACKLOG_WATCHED, Number(first))); s < first; s++) backlog.push(segmentFileName(r.timeline!, s, seg));
  let backlogLeft = Infinity;
  for (;;) {
    const wanted: string[] = [];
    for (let s = first; s <= last; s++) wanted.push(segmentFileName(r.timeline!, s, seg));
    const have = await req.archivedAmong(backlogLeft > 0 ? [...backlog, ...wanted] : wanted);
    const missing = wanted.filter((n) => !have.has(n));
    if (missing.length === 0) return;
    const behind = backlogLeft > 0 ? backlog.filter((n) => !have.has(n)).length : 0;
    if (missing.length < stillMissing || behind < backlogLeft) {
      stillMissing = missing.length;
      backlogLeft = behind;
      deadline = Date.now() + req.archiveTimeoutMs;
    }
    if (signal?.aborted) throw new PgpitrError('ERR_INTERRUPTED', `backup ${r.id} interrupted by a signal while it waited for its WAL to be archived`, { hint: 'run the backup again' });
    if (Date.now() > deadline) {
      const what = `the WAL backup ${r.id} needs is not in the archive: ${missing[0]}${missing.length > 1 ? ` and ${missing.length - 1} more` : ''} missing, none archived for ${req.archiveTimeoutMs / 1000} s`;
      throw new PgpitrError('ERR_CHECK', what, {
        hint: r.backup_from === 'standby'
          ? 'a backup of a standby ends at its replay point, and the primary archives that segment only once it is full: on a quiet primary, set archive_timeout there (or run SELECT pg_switch_wal() on it during the backup), raise --archive-timeout, or take the backup with --wal=included; pgpitr check on the primary tells whether its archive_command works'
          : 'check archive_command (pgpitr check tells what is wrong), raise --archive-timeout when the archiver is far behind, or take the backup with --wal=included to keep that WAL in the backup itself',
      });
    }
    // The archiver starts on the segment as soon as the backup's stop switched it: look again soon, then less often.
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(ARCHIVE_POLL_MAX_MS, pause * 2);
  }
}
