// One piece of a server file through SQL: pg_read_binary_file(path, offset,
// length, missing_ok => true). NULL is a file that is gone (dropped since it was
// listed); fewer bytes than asked, a file that shrank.
//
// The bytes come as a binary COPY of that one value over pgpitr's own protocol
// session (session.ts, a normal, non-replication connection), not as a bytea
// result through node-postgres: node-postgres reads results only as text, so a
// chunk would travel as hex and be decoded twice (UTF-8, then hex). Measured on
// a 128 MiB relation file in 1 MiB chunks: 1.9-2.9 s of client CPU through
// node-postgres, 0.13-0.21 s as binary COPY.

import type { Session } from '../../protocol/session.js';
import { quoteLiteral } from '../../protocol/session.js';
import { encodeQuery } from '../../protocol/frontend-messages.js';
import { PgpitrError } from '../../common/errors.js';

/** "PGCOPY\n\377\r\n\0", then the flags and the header extension length (0). */
const COPY_HEADER = 19;

export async function readServerFileChunk(session: Session, path: string, offset: number, length: number): Promise<Buffer | null> {
  session.send(encodeQuery(`COPY (SELECT pg_read_binary_file(${quoteLiteral(path)}, ${offset}, ${length}, true)) TO STDOUT (FORMAT binary)`));
  const parts: Buffer[] = [];
  for (;;) {
    const m = await session.next();
    if (m.type === 'CopyData') parts.push(m.data);
    else if (m.type === 'ErrorResponse') return session.failAfterError(m.fields, `could not read "${path}"`);
    else if (m.type === 'ReadyForQuery') break;
  }
  return decodeOneValue(parts.length === 1 ? parts[0]! : Buffer.concat(parts), path);
}

/** The value of a binary COPY of one row of one column: header, tuple (field count, length, bytes), trailer. */
function decodeOneValue(all: Buffer, path: string): Buffer | null {
  if (all.length < COPY_HEADER + 6 || all.toString('latin1', 0, 6) !== 'PGCOPY') throw badCopy(path);
  const fields = all.readInt16BE(COPY_HEADER);
  if (fields !== 1) throw badCopy(path);
  const n = all.readInt32BE(COPY_HEADER + 2);
  if (n === -1) return null;
  const start = COPY_HEADER + 6;
  if (n < 0 || start + n > all.length) throw badCopy(path);
  return all.subarray(start, start + n);
}

function badCopy(path: string): PgpitrError {
  return new PgpitrError('ERR_PROTOCOL', `the server's binary COPY of "${path}" is not one row of one value`);
}
