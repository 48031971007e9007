// What pgpitr reads of a data directory's global/pg_control: the database
// system identifier, the first field of ControlFileData (a uint64, in the
// machine's byte order) in every PostgreSQL version.

import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { endianness } from 'node:os';

/** The system identifier in `pgData`/global/pg_control; null when there is no such file, or it is too short. */
export function controlSystemIdentifier(pgData: string): string | null {
  let fd: number;
  try {
    fd = openSync(join(pgData, 'global', 'pg_control'), 'r');
  } catch {
    return null;
  }
  try {
    const b = Buffer.alloc(8);
    if (readSync(fd, b, 0, 8, 0) !== 8) return null;
    return (endianness() === 'LE' ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0)).toString();
  } finally {
    closeSync(fd);
  }
}
