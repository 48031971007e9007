// A backup taken on a timeline after a promotion needs that timeline's history file in the
// archive: restore follows the backup's timeline back through it (and refuses, by default, a
// timeline whose history it cannot read). PostgreSQL archives a history file once, at the
// promotion, so a stanza created later never receives it: the backup stores it itself, as the
// server has it (TIMELINE_HISTORY), when the archive lacks it. The file holds every ancestor, so
// one file is enough; a copy already archived is left as it is (the same bytes: archive-push's rules).
//
// Only where the archive's other timelines are this one's ancestors, each archived no further than
// its fork (an ordinary failover): there, the timeline takes "latest" from nothing that went on.
// Otherwise the file may be a copy's (a server restored and promoted elsewhere, backed up into this
// stanza): stored, it would make every restore's default follow the copy. PostgreSQL's own
// archiving decides then; restore says what is missing.

import { Session } from '../../protocol/session.js';
import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { ServerError } from '../../common/errors.js';
import { parseSegmentFileName, segmentFileName, timelineHistoryFileName } from '../../postgres/lsn.js';
import { parseTimelineHistory } from '../../postgres/timeline-history.js';
import { pushWalFile } from '../../repo/archive-store.js';
import { archivePath, parseStoredName } from '../../repo/layout.js';
import { storageJoin } from '../../storage/storage-path.js';
import type { Repository } from '../../repo/repository.js';
import type { StanzaInfo } from '../../repo/stanza.js';
import type { BackupReporter } from '../reporter.js';

export interface HistoryStore {
  repo: Repository;
  stanza: StanzaInfo;
  connection: ConnectionSettings;
  archivedAmong(names: string[]): Promise<Set<string>>;
}

/** Never fails the backup (its files are stored by then): what goes wrong is warned of, and restore says what it misses. */
export async function storeTimelineHistory(req: HistoryStore, timeline: number, reporter: BackupReporter): Promise<void> {
  if (timeline <= 1) return;
  await storeHistory(req, timeline, reporter).catch((e: Error) =>
    reporter.warn(`the history file of timeline ${timeline} could not be stored (${e.message}): restore of this backup may need --target-timeline current, or archive the file from the server's pg_wal`),
  );
}

async function storeHistory(req: HistoryStore, timeline: number, reporter: BackupReporter): Promise<void> {
  const name = timelineHistoryFileName(timeline);
  if ((await req.archivedAmong([name])).has(name)) return;
  let content: Buffer;
  const session = await Session.open(req.connection, 'physical', 'replication connection');
  try {
    content = Buffer.from((await session.queryBytes(`TIMELINE_HISTORY ${timeline}`))[0]?.rows[0]?.[1] ?? '', 'latin1'); // the server's bytes
  } catch (e) {
    if (!(e instanceof ServerError && e.sqlState === '58P01')) throw e;
    reporter.warn(`the archive has no ${name}, and the server has none either (${e.message}): restore of this backup needs --target-timeline current`);
    return;
  } finally {
    session.close();
  }
  const doubt = await otherHistory(req, timeline, content);
  if (doubt !== null) {
    reporter.warn(`the archive has no ${name}, the history of the backup's timeline, and ${doubt}: it is not stored from the server (this timeline may be a copy's); restore of this backup may need --target-timeline current`);
    return;
  }
  await pushWalFile(req.repo, req.stanza, name, content, { compression: 'none' });
  reporter.info(`stored ${name} from the server: the archive lacked the history of the backup's timeline (PostgreSQL archives it only when the timeline begins)`);
}

/**
 * Why the archive's other timelines make the file doubtful (null: none do): WAL of a timeline that
 * is not one of its ancestors, or of an ancestor past where this timeline branched off it (it went
 * on: production, beside a copy). An ordinary failover leaves only ancestors, each ending at its fork.
 */
async function otherHistory(req: HistoryStore, timeline: number, content: Buffer): Promise<string | null> {
  const own = timelineHistoryFileName(timeline).slice(0, 8);
  const prefixes = (await req.repo.storage.list(archivePath(req.stanza.stanza), { detail: false })).map((e) => e.name).filter((n) => /^[0-9A-F]{16}$/.test(n) && !n.startsWith(own));
  if (prefixes.length === 0) return null;
  const ancestors = parseTimelineHistory(content.toString('latin1'), timelineHistoryFileName(timeline));
  const size = req.stanza.wal_segment_size;
  for (const tli of new Set(prefixes.map((n) => parseInt(n.slice(0, 8), 16)))) {
    const fork = ancestors.find((a) => a.timeline === tli);
    if (fork === undefined) return `holds WAL of timeline ${tli}, which is not in its history`;
    // Any segment of that timeline after the one holding the fork: in a later folder, or in the fork's own.
    const forkSegNo = (fork.switchpoint - 1n) / BigInt(size);
    const folder = segmentFileName(tli, forkSegNo, size).slice(0, 16);
    const later = prefixes.find((n) => n.startsWith(folder.slice(0, 8)) && n > folder);
    if (later !== undefined) return `holds WAL of timeline ${tli} past its fork (folder ${later})`;
    if (prefixes.includes(folder)) {
      for (const e of await req.repo.storage.list(storageJoin(archivePath(req.stanza.stanza), folder), { detail: false })) {
        const stored = parseStoredName(e.name);
        const segNo = stored === null ? null : (parseSegmentFileName(stored.name, size)?.segNo ?? null);
        if (segNo !== null && segNo > forkSegNo) return `holds WAL of timeline ${tli} past its fork (${stored!.name})`;
      }
    }
  }
  return null;
}
