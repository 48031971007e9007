// A full garbage collection, asked for where a command knows that much of what
// it built is garbage (restore, once a large manifest is parsed and the plan
// made, before the copy starts).
//
// Why: V8 sets the old generation's next limit at a multiple (up to about 4)
// of what the last full collection found alive, and a manifest parsed an entry
// at a time leaves its parse behind in the old generation. Restoring 101,000
// files, the last full collection came during the parse (42 MB alive, 31 MB a
// moment later), so the heap grew to ~150 MB before the next one, and the
// process to 280-318 MB; with one collection before the copy, 233 MB.
//
// Node offers no API for it without --expose-gc; the flag is set at run time and
// `gc` taken from a new context (the pattern Jest's leak detector and the
// expose-gc package use). Should V8 refuse it, nothing is collected: the
// process only uses more memory.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null | undefined;

function collector(): (() => void) | null {
  const own = (globalThis as { gc?: unknown }).gc; // node --expose-gc
  if (typeof own === 'function') return own as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('typeof gc === "function" ? gc : null') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

/** Files past which a plan's garbage is worth a collection (below it, the heap stays small anyway). */
const MANY_FILES = 10_000;

/** One full, synchronous garbage collection (tens of milliseconds for tens of MB alive) when `files` is many. */
export function collectAfterPlan(files: number): void {
  if (files < MANY_FILES) return;
  collect ??= collector();
  collect?.();
}
