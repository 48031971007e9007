// A backup taken on a timeline after a promotion needs that timeline's history file in the
// archive: restore follows the backup's timeline back through it (and refuses, by default, a
// timeline whose history it cannot read). PostgreSQL archives a history file once, at the
// promotion, so a stanza created later never receives it: the backup stores it itself, as the
// server has it (TIMELINE_HISTORY), when the archive lacks it. The file holds every ancestor, so
// one file is enough; a copy already archived is left as it is (the same bytes: archive-push's rules).

import { Session } from '../../protocol/session.js';
import type { ConnectionSettings } from '../../protocol/conninfo.js';
import { ServerError } from '../../common/errors.js';
import { timelineHistoryFileName } from '../../postgres/lsn.js';
import { pushWalFile } from '../../repo/archive-store.js';
import type { Repository } from '../../repo/repository.js';
import type { StanzaInfo } from '../../repo/stanza.js';
import type { BackupReporter } from '../reporter.js';

export interface HistoryStore {
  repo: Repository;
  stanza: StanzaInfo;
  connection: ConnectionSettings;
  archivedAmong(names: string[]): Promise<Set<string>>;
}

export async function storeTimelineHistory(req: HistoryStore, timeline: number, reporter: BackupReporter): Promise<void> {
  if (timeline <= 1) return;
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
  await pushWalFile(req.repo, req.stanza, name, content, { compression: 'none' });
  reporter.info(`stored ${name} from the server: the archive lacked the history of the backup's timeline (PostgreSQL archives it only when the timeline begins)`);
}
