// One piece of a server file through SQL: pg_read_binary_file(path, offset,
// length, missing_ok => true), asked for as rows of ROW bytes. A NULL first row
// is a file that is gone (dropped since it was listed); fewer bytes than asked,
// a file that shrank (or was dropped midway).
//
// The bytes come as a binary COPY over pgpitr's own protocol session
// (session.ts, a normal, non-replication connection), not as a bytea result
// through node-postgres: node-postgres reads results only as text, so a chunk
// would travel as hex and be decoded twice (UTF-8, then hex). Measured on a
// 128 MiB relation file in 1 MiB chunks: 1.9-2.9 s of client CPU through
// node-postgres, 0.13-0.21 s as binary COPY.
//
// Why rows: the server's cost of sending one value grows faster than its size.
// Measured on PG 15 (a 100 MiB read through psql, page cache warm): one 1 MiB
// value per query took 2.5 s, 32 x 32 KiB rows per query 0.40 s, rows of 8 KiB
// 0.5-0.7 s. The large value is copied several times into freshly allocated
// memory on the server (bytea, send buffer, COPY buffer), and on this kind of
// machine it is the page faults that cost.

import type { Session } from '../../protocol/session.js';
import { quoteLiteral } from '../../protocol/session.js';
import { encodeQuery } from '../../protocol/frontend-messages.js';
import { PgpitrError } from '../../common/errors.js';

/** Bytes per row of the COPY: a multiple of the page size, so that no page straddles two rows. */
export const SQL_ROW = 32 * 1024;

/** "PGCOPY\n\377\r\n\0", then the flags and the header extension length (0). */
const COPY_HEADER = 19;

/**
 * `length` bytes from `offset` of the server file `path`, as the rows' values in
 * order (each a view where it can be); null when the file is not there. Fewer
 * bytes than asked when it is shorter.
 */
export async function readServerFileChunk(session: Session, path: string, offset: number, length: number): Promise<Buffer[] | null> {
  const rows = Math.max(1, Math.ceil(length / SQL_ROW));
  const p = quoteLiteral(path);
  const sql =
    rows === 1
      ? `COPY (SELECT pg_read_binary_file(${p}, ${offset}, ${length}, true)) TO STDOUT (FORMAT binary)`
      : `COPY (SELECT pg_read_binary_file(${p}, ${offset} + g * ${SQL_ROW}, least(${SQL_ROW}, ${length} - g * ${SQL_ROW}), true)` +
        ` FROM generate_series(0, ${rows - 1}) AS g ORDER BY g) TO STDOUT (FORMAT binary)`;
  session.send(encodeQuery(sql));
  const parts: Buffer[] = [];
  for (;;) {
    const m = await session.next();
    if (m.type === 'CopyData') parts.push(m.data);
    else if (m.type === 'ErrorResponse') return session.failAfterError(m.fields, `could not read "${path}"`);
    else if (m.type === 'ReadyForQuery') break;
  }
  return decodeValues(parts, rows, path);
}

/**
 * The values of a binary COPY of `rows` rows of one bytea column: header, then
 * per row the field count, the length (-1 for NULL) and the bytes, then the
 * trailer. A NULL first value gives null; values after a NULL or an empty value
 * (the file ended or was dropped) are not taken.
 */
export function decodeValues(parts: Buffer[], rows: number, path: string): Buffer[] | null {
  const c = new Cursor(parts, path);
  if (c.take(COPY_HEADER).toString('latin1', 0, 6) !== 'PGCOPY') throw badCopy(path);
  const values: Buffer[] = [];
  let ended = false;
  for (let r = 0; r < rows; r++) {
    if (c.take(2).readInt16BE(0) !== 1) throw badCopy(path);
    const n = c.take(4).readInt32BE(0);
    if (n === -1) {
      if (r === 0) return null;
      ended = true;
      continue;
    }
    if (n < 0) throw badCopy(path);
    const v = c.take(n);
    if (ended) continue;
    if (n > 0) values.push(v);
    if (n < SQL_ROW) ended = true;
  }
  if (c.take(2).readInt16BE(0) !== -1) throw badCopy(path);
  return values;
}

/** Reads across the CopyData payloads; a field within one payload is a view, one across payloads is copied. */
class Cursor {
  private i = 0;
  private pos = 0;

  constructor(
    private readonly parts: Buffer[],
    private readonly path: string,
  ) {}

  take(n: number): Buffer {
    while (this.i < this.parts.length && this.pos === this.parts[this.i]!.length) {
      this.i++;
      this.pos = 0;
    }
    const cur = this.parts[this.i];
    if (cur === undefined) throw badCopy(this.path);
    if (this.pos + n <= cur.length) {
      const v = cur.subarray(this.pos, this.pos + n);
      this.pos += n;
      return v;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const p = this.parts[this.i];
      if (p === undefined) throw badCopy(this.path);
      const k = Math.min(n - filled, p.length - this.pos);
      p.copy(out, filled, this.pos, this.pos + k);
      filled += k;
      this.pos += k;
      if (this.pos === p.length) {
        this.i++;
        this.pos = 0;
      }
    }
    return out;
  }
}

function badCopy(path: string): PgpitrError {
  return new PgpitrError('ERR_PROTOCOL', `the server's binary COPY of "${path}" is not the rows of one value asked for`);
}
