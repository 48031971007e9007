// A backup taken on a timeline after a promotion needs that timeline's history file in the
// archive: restore follows the backup's timeline back through it (and refuses, by default, a
// timeline whose history it cannot read). PostgreSQL archives a history file once, at the
// promotion, so a stanza created later never receives it: the backup stores it itself, as the
// server has it (TIMELINE_HISTORY), when the archive lacks it. The file holds every ancestor, so
// one file is enough; a copy already archived is left as it is (the same bytes: archive-push's rules).
//
// Only into an archive that holds the WAL of no other timeline: there, the timeline cannot take
// "latest" from anything. Where other timelines' WAL is archived, the file may be a copy's (a
// server restored and promoted elsewhere, backed up into this stanza): stored, it would make every
// restore's default follow the copy. PostgreSQL's own archiving decides then; restore says what is
// missing.

import { Session } from '../../protocol/session.js';
import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { ServerError } from '../../common/errors.js';
import { timelineHistoryFileName } from '../../postgres/lsn.js';
import { pushWalFile } from '../../repo/archive-store.js';
import { archivePath } from '../../repo/layout.js';
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
  const own = timelineHistoryFileName(timeline).slice(0, 8);
  const others = (await req.repo.storage.list(archivePath(req.stanza.stanza), { detail: false })).filter((e) => /^[0-9A-F]{16}$/.test(e.name) && !e.name.startsWith(own));
  if (others.length > 0) {
    reporter.warn(`the archive has no ${name}, the history of the backup's timeline, and holds the WAL of other timelines: it is not stored from the server (it may be a copy's timeline); restore of this backup may need --target-timeline current`);
    return;
  }
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
  await pushWalFile(req.repo, req.stanza, name, content, { compression: 'none' });
  reporter.info(`stored ${name} from the server: the archive lacked the history of the backup's timeline (PostgreSQL archives it only when the timeline begins)`);
}
