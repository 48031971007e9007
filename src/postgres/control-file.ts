// What pgpitr reads of a data directory's global/pg_control: the database
// system identifier, the first field of ControlFileData (a uint64, in the
// machine's byte order) in every PostgreSQL version, and the redo location of
// its latest checkpoint (checkPointCopy.redo, at byte 40 from 13 to 18: after
// the identifier, two uint32 versions, the state and its padding, the time and
// the checkpoint's location), and the cluster's state with the location and
// timeline of that checkpoint (state at byte 16, checkPoint at 32,
// checkPointCopy.ThisTimeLineID at 48).

import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { endianness } from 'node:os';

/** The system identifier in `pgData`/global/pg_control; null when there is no such file, or it is too short. */
export function controlSystemIdentifier(pgData: string): string | null {
  return readUint64(pgData, 0)?.toString() ?? null;
}

const REDO_OFFSET = 40;

/** The redo location of the latest checkpoint (or restartpoint) in `pgData`/global/pg_control; null when unreadable. */
export function controlCheckpointRedo(pgData: string): bigint | null {
  return readUint64(pgData, REDO_OFFSET);
}

/** pg_control's DBState (catalog/pg_control.h, the same from 13 to 18). */
export const DB_SHUTDOWNED = 1;
export const DB_SHUTDOWNED_IN_RECOVERY = 2;
export const DB_IN_ARCHIVE_RECOVERY = 5;

export interface ControlCheckpoint {
  /** The cluster's state (DB_SHUTDOWNED: stopped cleanly as a primary). */
  state: number;
  /** Where its latest checkpoint record begins. */
  checkPoint: bigint;
  /** The timeline that checkpoint was written on. */
  timeline: number;
}

/** The state, latest checkpoint's location and its timeline in `pgData`/global/pg_control; null when unreadable. */
export function controlCheckpoint(pgData: string): ControlCheckpoint | null {
  const b = readBytes(pgData, 0, 52);
  if (b === null) return null;
  const le = endianness() === 'LE';
  return {
    state: le ? b.readInt32LE(16) : b.readInt32BE(16),
    checkPoint: le ? b.readBigUInt64LE(32) : b.readBigUInt64BE(32),
    timeline: le ? b.readUInt32LE(48) : b.readUInt32BE(48),
  };
}

function readUint64(pgData: string, offset: number): bigint | null {
  const b = readBytes(pgData, offset, 8);
  if (b === null) return null;
  return endianness() === 'LE' ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
}

function readBytes(pgData: string, offset: number, length: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(join(pgData, 'global', 'pg_control'), 'r');
  } catch {
    return null;
  }
  try {
    const b = Buffer.alloc(length);
    return readSync(fd, b, 0, length, offset) === length ? b : null;
  } finally {
    closeSync(fd);
  }
}
