// pg_control, the last file of a parallel backup, read whole and checked
// before it goes in. The server rewrites it in place (each checkpoint; on a
// standby, each advance of the minimum recovery point), and a read that
// overlaps a write can see part of each: a restored cluster whose pg_control
// fails its CRC does not start ("incorrect checksum in control file"), while
// the backup_manifest, computed over the torn bytes, vouches for it. So it is
// read again until its CRC matches, and those bytes are the ones copied.

import { readFile } from 'node:fs/promises';
import { crc32c } from '../../storage/filter/crc32c.js';
import { PgpitrError } from '../../common/errors.js';
import type { SqlClient } from '../../protocol/sql-client.js';

/**
 * Whether the control file's CRC-32C matches: ControlFileData ends with the CRC of the
 * bytes before it, at an offset that depends on the version (288 on 13-18); any 4-byte
 * aligned prefix of the first KiB whose CRC is the word after it is taken for it (a
 * torn file matching by chance: one chance in 2^32 per offset).
 */
export function controlFileIntact(bytes: Buffer): boolean {
  for (let k = 16; k + 4 <= Math.min(bytes.length, 1024); k += 4) {
    if (crc32c(bytes.subarray(0, k)) >>> 0 === bytes.readUInt32LE(k)) return true;
  }
  return false;
}

const TRIES = 10;
const PAUSE_MS = 20;

/** pg_control as read once its CRC matched; an error after TRIES reads that never did. */
export async function intactControlFile(read: () => Promise<Buffer>, shown: string): Promise<Buffer> {
  for (let i = 1; ; i++) {
    const bytes = await read();
    if (controlFileIntact(bytes)) return bytes;
    if (i === TRIES) {
      throw new PgpitrError('ERR_STORAGE', `${shown}: its CRC did not match in ${TRIES} reads: the server's control file is damaged, or rewritten all the time`, {
        hint: 'check the server log; run pg_controldata on the data directory (it says whether the CRC matches), then run the backup again',
      });
    }
    await new Promise((r) => setTimeout(r, PAUSE_MS));
  }
}

/** Reads the control file from this host's data directory. */
export function readLocal(path: string): () => Promise<Buffer> {
  return () => readFile(path);
}

/** Reads the control file through the server (the sql read method). */
export function readThroughServer(sql: SqlClient, path: string, size: number): () => Promise<Buffer> {
  return async () => {
    // The four-argument form: the one a role reading with the sql method is granted (sql-permission.ts).
    const r = await sql.query<{ b: Buffer | null }>('SELECT pg_read_binary_file($1, 0, $2, false) AS b', [path, Math.max(size, 8192)]);
    const b = r.rows[0]?.b;
    if (!b) throw new PgpitrError('ERR_STORAGE', `${path} could not be read through the server`, { hint: 'check the data directory the server runs on (data_directory)' });
    return b;
  };
}
