// What pgpitr reads of a data directory's global/pg_control: the database
// system identifier, the first field of ControlFileData (a uint64, in the
// machine's byte order) in every PostgreSQL version, and the redo location of
// its latest checkpoint (checkPointCopy.redo, at byte 40 from 13 to 18: after
// the identifier, two uint32 versions, the state and its padding, the time and
// the checkpoint's location).

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

function readUint64(pgData: string, offset: number): bigint | null {
  let fd: number;
  try {
    fd = openSync(join(pgData, 'global', 'pg_control'), 'r');
  } catch {
    return null;
  }
  try {
    const b = Buffer.alloc(8);
    if (readSync(fd, b, 0, 8, offset) !== 8) return null;
    return endianness() === 'LE' ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
  } finally {
    closeSync(fd);
  }
}
