// At start, before the resume point is chosen: complete the segments an earlier
// run received in full but was stopped (SIGKILL, power loss) before it renamed.
//
// SegmentFiles creates <T,N+1> only once <T,N>'s data is synced, so a .partial
// file whose same-timeline successor exists in the directory holds its whole segment (with --no-sync, only after a
// process crash: after a power loss its tail may not have reached the disk, as
// pg_receivewal --no-sync promises nothing there either; the content cannot
// tell, a switched segment legitimately ends with zeros): it is synced and renamed
// durably, as its run would have done. A .partial with no successor is where
// streaming resumes (start-position.ts); a timeline's last segment before a
// switch has its successor on the next timeline only and stays .partial, as
// pg_receivewal leaves it.
//
// A successor in the archive proves nothing: receive-wal stores <T,N+1> only after
// <T,N> was renamed, so it was stored by another writer of the stanza (archive_command),
// and the .partial may end with zeros where the segment did not. A .partial whose
// complete segment the archive holds is removed instead (the archive has it whole).

import { closeSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { storageError } from '../common/errors.js';
import { parseReceivedFileName, receivedFileName } from './received-file-names.js';
import type { ReceivedFileName } from './received-file-names.js';
import { fsyncPathSync } from '../storage/durable.js';

/**
 * Completes what can be completed; returns the new names. `otherNames` are the names
 * in the archive (repository mode): a .partial whose complete segment is there goes.
 */
export function completeInterruptedSegments(
  dir: string,
  dirNames: string[],
  otherNames: string[],
  segmentSize: number,
  sync: boolean,
  log: (message: string) => void,
): string[] {
  const parsed = (names: string[]) => names.map((n) => parseReceivedFileName(n, segmentSize)).filter((f): f is ReceivedFileName => f !== null);
  const present = new Set(parsed(dirNames).map((f) => `${f.timeline}/${f.segNo}`));
  const archivedWhole = new Set(parsed(otherNames).filter((f) => !f.partial).map((f) => `${f.timeline}/${f.segNo}`));
  const completeForms = new Map(parsed(dirNames).filter((f) => !f.partial).map((f) => [`${f.timeline}/${f.segNo}`, receivedFileName(f.segment, f.compression, false)]));
  const completed: string[] = [];
  let removed = false;
  for (const f of parsed(dirNames)) {
    if (!f.partial) continue;
    const from = join(dir, receivedFileName(f.segment, f.compression, true));
    if (archivedWhole.has(`${f.timeline}/${f.segNo}`)) {
      try {
        unlinkSync(from);
      } catch (e) {
        throw storageError('remove', from, e);
      }
      log(`removed ${receivedFileName(f.segment, f.compression, true)}: the archive holds segment ${f.segment} whole`);
      removed = true;
      continue;
    }
    if (!present.has(`${f.timeline}/${f.segNo + 1n}`)) continue;
    const name = receivedFileName(f.segment, f.compression, false);
    const to = join(dir, name);
    const done = completeForms.get(`${f.timeline}/${f.segNo}`);
    if (done) {
      log(`warning: both ${done} and ${receivedFileName(f.segment, f.compression, true)} exist; leaving the .partial file alone`);
      continue;
    }
    const size = uncompressedSizeHint(from, f);
    if (size !== null && size !== segmentSize) {
      log(`warning: segment file "${from}" has incorrect size ${size}, not completing it`);
      continue;
    }
    if (sync) fsyncPathSync(from);
    try {
      renameSync(from, to);
    } catch (e) {
      throw storageError('complete interrupted WAL segment', from, e);
    }
    log(`completed segment ${name}, received in full by an interrupted run`);
    completed.push(name);
    completeForms.set(`${f.timeline}/${f.segNo}`, name);
  }
  // The temporary file of a resume (resumed-partial.ts) whose .partial is gone or complete now: a
  // copy of what that file held, or less, left by a run killed during it.
  const partialsLeft = new Set(readdirSync(dir));
  for (const n of dirNames) {
    if (!n.endsWith('.partial.resume') || partialsLeft.has(n.slice(0, -'.resume'.length))) continue;
    try {
      unlinkSync(join(dir, n));
      removed = true;
    } catch {
      /* gone */
    }
  }
  if ((completed.length > 0 || removed) && sync) fsyncPathSync(dir);
  return completed;
}

/** The size the segment has once decompressed, where cheap to know (gzip's ISIZE); null for lz4. */
function uncompressedSizeHint(path: string, f: ReceivedFileName): number | null {
  try {
    const size = statSync(path).size;
    if (f.compression === null) return size;
    if (f.compression === 'lz4') return null;
    if (size < 4) return 0;
    const fd = openSync(path, 'r');
    try {
      const b = Buffer.alloc(4);
      readSync(fd, b, 0, 4, size - 4);
      return b.readUInt32LE(0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw storageError('read', path, e);
  }
}
