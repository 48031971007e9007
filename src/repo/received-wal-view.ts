// The archive as a restore that ends plans with it: the stanza's WAL archive and, after its last
// segment, what receive-wal received and has not stored yet (repo/receiver-partial.ts). Such a
// recovery's archive-get hands those segments over (into pg_wal) once the archive has no more, so
// a target among them is reached: with receive-wal as the only archiving, the moment before a
// DROP TABLE is most often in the segment it is receiving. Only segments that follow the
// archive's last on its timeline without a hole, read as archive-get reads them; a standby (which
// streams instead) and a restore_command of the DBA's own are planned with the archive alone.

import { parseSegmentFileName, segmentFileName } from '../postgres/lsn.js';
import { storageJoin } from '../storage/storage-path.js';
import { RECEIVER_DIR, stanzaPath } from './layout.js';
import { receivedSegment } from './receiver-partial.js';
import type { Repository } from './repository.js';
import type { WalArchiveListing } from './wal-archive-view.js';

export async function withReceivedWal(view: WalArchiveListing, repo: Repository, stanza: string, segmentSize: number, systemId: string, log: (line: string) => void): Promise<WalArchiveListing> {
  if (repo.encryption) return view;
  let entries: string[];
  try {
    entries = (await repo.storage.list(storageJoin(stanzaPath(stanza), RECEIVER_DIR), { detail: false })).map((e) => e.name);
  } catch (e) {
    log(`warning: what receive-wal received past the archive was not looked at: ${(e as Error).message}`);
    return view;
  }
  const archived = new Set(view.names());
  const names = [...new Set(entries.map((n) => /^([0-9A-F]{24})(\.partial)?$/.exec(n)?.[1]).filter((n): n is string => n !== undefined))].sort();
  // Each timeline's run on its own (after a promotion the old timeline's .partial stays beside the
  // new one's): which one recovery reads is its branch's business (the plan, archive-get).
  const received: string[] = [];
  const inPart = new Set<string>();
  const ended = new Set<number>();
  for (const name of names) {
    const seg = archived.has(name) ? null : parseSegmentFileName(name, segmentSize);
    if (seg === null || seg.segNo === 0n || ended.has(seg.timeline)) continue;
    // After the segment before it on its timeline, or on an older one (a timeline's first segment,
    // the one its promotion happened in: the older timeline's file comes before it).
    let follows = false;
    for (let t = seg.timeline; t >= 1 && !follows; t--) {
      const prev = segmentFileName(t, seg.segNo - 1n, segmentSize);
      follows = archived.has(prev) || received.includes(prev);
    }
    if (!follows) continue;
    let got: Awaited<ReturnType<typeof receivedSegment>>;
    try {
      got = await receivedSegment(repo, stanza, name, segmentSize, systemId);
    } catch (e) {
      log(`warning: what receive-wal received of ${name} could not be read: ${(e as Error).message}`);
      ended.add(seg.timeline);
      continue;
    }
    if (got === null) continue;
    received.push(name);
    // Recovery ends in a segment received in part: none after it on its timeline is read.
    if (got.padded) {
      inPart.add(name);
      ended.add(seg.timeline);
    }
  }
  if (received.length === 0) return view;
  const listed = received.map((n) => (inPart.has(n) ? `${n} (in part)` : n)).join(', ');
  log(`WAL ${received.length === 1 ? 'segment' : 'segments'} ${listed} ${received.length === 1 ? 'is' : 'are'} not archived yet: receive-wal received ${received.length === 1 ? 'it' : 'them'}; recovery is handed what its timeline's branch reads of ${received.length === 1 ? 'it' : 'them'} after the archive's last segment`);
  const held = new Set(received);
  return {
    ...view,
    names: () => [...view.names(), ...received],
    // A delta restore judges the old cluster's pg_wal by what the archive holds: received WAL may be shorter than it.
    storedNames: () => view.names(),
    readSegment: async (name, upcoming) => {
      if (!held.has(name)) return view.readSegment(name, upcoming);
      return (await receivedSegment(repo, stanza, name, segmentSize, systemId))?.data ?? view.readSegment(name, upcoming);
    },
  };
}
