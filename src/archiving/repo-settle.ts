// The asynchronous pusher's rules for several repositories, pure so that they
// are unit-tested: when a WAL file is settled for the server (its spool marker
// archive_command answers from), and which repositories drop which files when
// the queue passes archive-push-queue-max.
//
// A file is settled in one repository when stored there or dropped for it;
// settled for the server when settled in every repository. Past the queue
// limit, a repository that by itself lacks more than the limit drops what it
// lacks (not what it is storing right now): a repository that is down drops,
// one that keeps up does not. Should the queue still be past the limit (two
// repositories lagging on different files), every repository drops what it
// lacks, as with one repository; files that some repository is storing right
// now do not count then: no drop would let PostgreSQL recycle them before that
// store ends, and a repository down with stores in flight (retried for
// seconds) must not make one that keeps up drop what it has not stored yet.

import { parseFailureText, failureText } from './spool.js';
import type { MarkerKind } from './spool.js';

/** Where a file is in one repository's queue. */
export type RepoFileState =
  | { state: 'pending' } // not tried yet, or being stored
  | { state: 'stored' }
  /** `message`: the loud message of the first file of a drop (archive_command logs it), else ''. */
  | { state: 'dropped'; message: string }
  /** `message`: the failure, in the spool's text form (message, then hint). */
  | { state: 'error'; message: string };

export interface LabelledState {
  /** "repo2 (/var/lib/pgpitr2)". */
  title: string;
  /** "repo2". */
  name: string;
  file: RepoFileState;
}

/** Marker text of a file stored in some repositories and dropped for the others. */
export const DROPPED_FOR = 'dropped for ';

/**
 * The server-side marker of a file from its state in every repository; null while some
 * repository has not settled it nor failed it yet.
 *   ok ''                    every repository stored it
 *   ok 'dropped for repo2'   stored somewhere, dropped for repo2 (archive_command succeeds)
 *   ok 'dropped'             dropped for every repository
 *   dropped MESSAGE          the first file of a drop: archive_command succeeds and logs MESSAGE
 *   error TEXT               every repository answered and some failed: archive_command fails
 *                            (PostgreSQL retries) with the failures, each naming its repository
 */
export function serverMarker(states: LabelledState[]): { kind: MarkerKind; message: string } | null {
  if (states.some((s) => s.file.state === 'pending')) return null;
  const failed = states.filter((s) => s.file.state === 'error');
  const stored = states.filter((s) => s.file.state === 'stored');
  if (failed.length > 0) {
    const parsed = failed.map((s) => ({ s, ...parseFailureText((s.file as { message: string }).message) }));
    const hint = parsed.find((p) => p.hint !== undefined)?.hint;
    // The first failure's code, as a synchronous push to several repositories exits with it (docs/exit-codes.md).
    const code = parsed.find((p) => p.code !== undefined)?.code;
    const message = `not archived in ${parsed.map((p) => `${p.s.title}: ${p.message}`).join('; ')}${stored.length > 0 ? ` (archived in ${stored.map((s) => s.name).join(', ')})` : ''}`;
    return { kind: 'error', message: failureText({ message, ...(hint === undefined ? {} : { hint }), ...(code === undefined ? {} : { code }) }) };
  }
  const dropped = states.filter((s) => s.file.state === 'dropped');
  if (dropped.length === 0) return { kind: 'ok', message: '' };
  const loud = dropped.map((s) => (s.file as { message: string }).message).filter((m) => m !== '');
  if (loud.length > 0) return { kind: 'dropped', message: loud.join('; ') };
  return { kind: 'ok', message: stored.length > 0 ? `${DROPPED_FOR}${dropped.map((s) => s.name).join(', ')}` : 'dropped' };
}

export interface DropPlanInput {
  /** Segments (and partial segments) ready and not settled for the server, oldest first. */
  unsettled: string[];
  /** Per repository: the files settled there (stored or dropped). */
  settled: ReadonlySet<string>[];
  /** Per repository: the files being stored there now (never dropped: they may be stored in a moment). */
  inFlight: ReadonlySet<string>[];
  segmentSize: number;
  queueMaxBytes: number;
}

/** Per repository (same order), the files to drop for it now; all empty while the queue is within the limit. */
export function planDrops(p: DropPlanInput): string[][] {
  const none = p.settled.map(() => [] as string[]);
  const over = (count: number) => count * p.segmentSize > p.queueMaxBytes;
  if (!over(p.unsettled.length)) return none;
  const lacking = p.settled.map((settled) => p.unsettled.filter((n) => !settled.has(n)));
  const droppable = (i: number) => lacking[i]!.filter((n) => !p.inFlight[i]!.has(n));
  const plan = lacking.map((names, i) => (over(names.length) ? droppable(i) : []));
  const planned = plan.map((names) => new Set(names));
  const held = (n: string) => p.inFlight.some((names) => names.has(n));
  const remaining = p.unsettled.filter((n) => !held(n) && p.settled.some((settled, i) => !settled.has(n) && !planned[i]!.has(n)));
  if (!over(remaining.length)) return plan;
  return lacking.map((_, i) => droppable(i));
}
