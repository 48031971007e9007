// Is a WAL segment the archive does not hold its end, or a gap? PostgreSQL
// cannot tell: restore_command's "not found" ends recovery there and the
// server is promoted, so a segment missing in the middle of the archive (an
// expire that ran during the recovery, a segment the asynchronous archiver
// dropped, a file deleted by hand) silently throws away everything archived
// after it. archive-get asks this before it answers "not found" in a recovery
// to the end of the archive.
//
// A gap is a later segment archived along the branch recovery follows: the
// timeline it follows (restore passes it; else the newest in the archive, as
// recovery_target_timeline = latest) and its ancestors, each up to where it ended
// (PostgreSQL's pick of timeline per segment: timeline-history.ts
// branchSpans). A segment asked for on a timeline that is not the one replay
// reads there (PostgreSQL trying older timelines at the end of the archive)
// is never a gap, whatever that timeline holds. Looked up with a listing of
// the archive's top (directories, history files) and of the directories after
// the segment's, usually one or two.

import { parseSegmentFileName, timelineHistoryFileName } from '../postgres/lsn.js';
import { branchSpans } from '../postgres/timeline-history.js';
import type { TimelineBranch } from '../postgres/timeline-history.js';
import { storageJoin } from '../storage/storage-path.js';
import { archivedBranch } from './followed-branch.js';
import { archivePath, parseStoredName, storedHistoryTimeline } from './layout.js';
import type { Repository } from './repository.js';
import { PgpitrError } from '../common/errors.js';

/** A segment archived after a missing one, and when it was stored. */
export interface ArchivedAfter {
  name: string;
  mtimeMs: number;
}

/**
 * The first segment archived after segment `name` along the branch recovery follows (a gap:
 * `name` is missing in the middle of the archive), or null (the end of the archive there).
 * `timeline`: the timeline recovery follows (recovery_target_timeline, as restore wrote it);
 * null: the newest in the archive (recovery_target_timeline = latest).
 */
export async function archivedAfter(repo: Repository, stanza: string, name: string, segmentSize: number, timeline: number | null = null): Promise<ArchivedAfter | null> {
  const wanted = parseSegmentFileName(name, segmentSize);
  if (wanted === null) return null;
  const top = await repo.storage.list(archivePath(stanza), { detail: false });
  const dirs = new Map<number, { high: bigint; path: string }[]>();
  let newest = wanted.timeline;
  for (const e of top) {
    const d = /^([0-9A-F]{8})([0-9A-F]{8})$/.exec(e.name);
    if (d && e.type === 'directory') {
      const tli = parseInt(d[1]!, 16);
      dirs.set(tli, [...(dirs.get(tli) ?? []), { high: BigInt(`0x${d[2]}`), path: storageJoin(archivePath(stanza), e.name) }]);
      continue;
    }
    newest = Math.max(newest, storedHistoryTimeline(e.name) ?? newest);
  }
  const follows = timeline ?? newest;
  // The segment's own timeline followed: only its span past the segment matters, whatever its history.
  const branch = follows === wanted.timeline ? { timeline: follows, ancestors: [] } : await branchOf(repo, stanza, follows);
  const spans = branchSpans(branch, segmentSize);
  const at = spans.findIndex((s) => wanted.segNo >= s.from && (s.to === null || wanted.segNo <= s.to));
  if (at < 0 || spans[at]!.timeline !== wanted.timeline) return null;
  const perDir = 0x100000000n / BigInt(segmentSize);
  for (const span of spans.slice(at)) {
    const lo = span.from > wanted.segNo ? span.from : wanted.segNo + 1n;
    const inSpan = (segNo: bigint) => segNo >= lo && (span.to === null || segNo <= span.to);
    const candidates = (dirs.get(span.timeline) ?? []).filter((d) => d.high >= lo / perDir && (span.to === null || d.high <= span.to / perDir)).sort((a, b) => (a.high < b.high ? -1 : 1));
    for (const dir of candidates) {
      let first: { segNo: bigint; mtimeMs: number; name: string } | null = null;
      for (const e of await repo.storage.list(dir.path, { detail: true })) {
        const stored = parseStoredName(e.name);
        // A .partial (a timeline's last segment, or receive-wal's) is WAL past the missing segment too.
        const seg = stored && /^[0-9A-F]{24}(\.partial)?$/.test(stored.name) ? parseSegmentFileName(stored.name.slice(0, 24), segmentSize) : null;
        if (seg && seg.timeline === span.timeline && inSpan(seg.segNo) && (first === null || seg.segNo < first.segNo)) first = { segNo: seg.segNo, mtimeMs: e.mtimeMs, name: stored!.name };
      }
      if (first !== null) return { name: first.name, mtimeMs: first.mtimeMs };
    }
  }
  return null;
}

/** The branch leading to `timeline`, which the archive must hold to judge a gap along it. */
async function branchOf(repo: Repository, stanza: string, timeline: number): Promise<TimelineBranch> {
  const branch = await archivedBranch(repo, stanza, timeline);
  if (branch !== null) return branch;
  const file = timelineHistoryFileName(timeline);
  throw new PgpitrError('ERR_STORAGE', `history file ${file} is not in stanza "${stanza}" (${repo.location}): whether a segment missing along timeline ${timeline} is a gap cannot be told`, {
    hint: `archive ${file} from the server's pg_wal (pgpitr archive-push), or give restore_command --accept-archive-gap`,
  });
}
