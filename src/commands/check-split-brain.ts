// check's word when the segment it switched to did not reach the repository and the archive
// says why: a promotion ended this server's timeline before that segment (a history file forks
// it there), so this server went on writing a timeline another server ended (split brain). Its
// archiver is then held at the segment of the fork, which the archive holds with the promoted
// side's WAL (archive-push refuses the other content, naming the split brain in the server log:
// black-box run U found check saying only that the segment did not arrive).

import { formatLsn, parseSegmentFileName } from '../postgres/lsn.js';
import { fetchWalFile } from '../repo/archive-store.js';
import { timelineEnd } from '../repo/archive-conflict.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { readStanza } from '../repo/stanza.js';

/** The reason to add to check's "did not reach" (with its leading space), or null. */
export async function splitBrain(req: { repos: NumberedRepository[]; stanza: string }, wal: string): Promise<string | null> {
  for (const { repo } of req.repos) {
    try {
      const size = (await readStanza(repo, req.stanza)).wal_segment_size;
      const seg = parseSegmentFileName(wal, size);
      if (seg === null) continue;
      const end = await timelineEnd(repo, req.stanza, seg.timeline, (n) => fetchWalFile(repo, req.stanza, n));
      if (end === null || end >= (seg.segNo + 1n) * BigInt(size)) continue;
      return ` (the archive's history files end timeline ${seg.timeline} at ${formatLsn(end)}, where a promotion began another timeline: this server went on writing timeline ${seg.timeline} after it, a split brain, and archive-push refuses its segment of the fork, which the archive holds with the promoted server's WAL; make this server a standby of the promoted one: pgpitr restore --delta --standby, or pg_rewind)`;
    } catch {
      /* this repository says nothing: the others may */
    }
  }
  return null;
}
