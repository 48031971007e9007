// What pgpitr reads of a data directory's global/pg_control: the database
// system identifier, the first field of ControlFileData (a uint64, in the
// machine's byte order) in every PostgreSQL version, and the redo location of
// its latest checkpoint (checkPointCopy.redo, at byte 40 from 13 to 18: after
// the identifier, two uint32 versions, the state and its padding, the time and
// the checkpoint's location) and its timeline (checkPointCopy.ThisTimeLineID,
// the uint32 after the redo location).

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

/** The timeline of the latest checkpoint (or restartpoint) in `pgData`/global/pg_control; null when unreadable. */
export function controlCheckpointTimeline(pgData: string): number | null {
  const b = readBytes(pgData, REDO_OFFSET + 8, 4);
  return b === null ? null : endianness() === 'LE' ? b.readUInt32LE(0) : b.readUInt32BE(0);
}

function readUint64(pgData: string, offset: number): bigint | null {
  const b = readBytes(pgData, offset, 8);
  return b === null ? null : endianness() === 'LE' ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
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
