// What one WAL segment, read on its own, says about restore points: those
// whose record begins in it, whether the record running on into the next
// segment is (or may be) one, and whether the WAL ends inside it. Archiving
// computes this once per segment (repo/restore-point-index.ts keeps it), so
// that restore can find a named target without reading every segment between
// the backup and the target.
//
// Read on its own, a segment's first bytes may be the rest of a record begun
// in the segment before: they are passed over (wal-records.ts). What only a
// reading across segments sees (a record's rest that does not match its start,
// an xl_prev pointing elsewhere at the boundary) is left to recovery.

import { WalRecordScanner } from './wal-records.js';
import type { RestorePointRecord } from './wal-records.js';
import type { Lsn } from './lsn.js';

export interface SegmentRestorePoints {
  /** Restore points whose record begins in the segment, in order. */
  points: RestorePointRecord[];
  /** The record running on into the next segment is, or may be, a restore point: read both to know. */
  crosses: boolean;
  /** The WAL ends inside the segment, as recovery reads it. */
  ends: boolean;
}

export function segmentRestorePoints(start: Lsn, data: Buffer, crc32c: (chunk: Uint8Array, crc?: number) => number): SegmentRestorePoints {
  const points: RestorePointRecord[] = [];
  const scanner = new WalRecordScanner({ crc32c, onRestorePoint: (p) => points.push(p) });
  const went = scanner.segment(start, data);
  return { points, crosses: went === 'next' && scanner.pendingMayBeRestorePoint(), ends: went === 'end' };
}
