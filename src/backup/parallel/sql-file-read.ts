// One piece of a server file through SQL: pg_read_binary_file(path, offset,
// length, missing_ok => true), asked for as rows of SQL_ROW bytes. A NULL first
// row is a file that is gone (dropped since it was listed); fewer bytes than
// asked, a file that shrank (or was dropped midway).
//
// The bytes come as a binary COPY over pgpitr's own protocol session
// (session.ts, a normal, non-replication connection), not as a bytea result
// through node-postgres: node-postgres reads results only as text, so a chunk
// would travel as hex and be decoded twice (UTF-8, then hex). Measured on a
// 128 MiB relation file in 1 MiB chunks: 1.9-2.9 s of client CPU through
// node-postgres, 0.13-0.21 s as binary COPY.
//
// Why rows: the server's cost of sending one value grows faster than its size.
// Measured on PG 15 (1 GiB read on one connection, page cache warm): rows of
// 32 KiB cost the server 1.3-1.9 s of CPU, of 128 KiB 2.2-3.0 s, one 1 MiB value
// per query 19-20 s. The large value is copied several times into freshly
// allocated memory on the server (bytea, send buffer, COPY buffer), and on this
// kind of machine it is the page faults that cost.
//
// The query is sent (sendChunkQuery) apart from its answer being taken
// (receiveChunk), so that a reader can ask for its next chunk before it
// verifies and writes the one it has: the server reads while the client works.
// The rows' values are copied as they arrive, whatever the message and socket
// boundaries, into the caller's buffer (CopyRowsDecoder): no buffer per row.

import type { Session } from '../../protocol/session.js';
import { quoteLiteral } from '../../protocol/session.js';
import { encodeQuery } from '../../protocol/frontend-messages.js';
import { PgpitrError } from '../../common/errors.js';

/** Bytes per row of the COPY: a multiple of the page size, so that no page straddles two rows. */
export const SQL_ROW = 32 * 1024;

/** "PGCOPY\n\377\r\n\0", then the flags and the header extension length (0). */
const COPY_HEADER = 19;

/** Asks for `length` bytes from `offset` of the server file `path`; receiveChunk takes the answer. */
export function sendChunkQuery(session: Session, path: string, offset: number, length: number): void {
  const rows = Math.max(1, Math.ceil(length / SQL_ROW));
  const p = quoteLiteral(path);
  const sql =
    rows === 1
      ? `COPY (SELECT pg_read_binary_file(${p}, ${offset}, ${length}, true)) TO STDOUT (FORMAT binary)`
      : `COPY (SELECT pg_read_binary_file(${p}, ${offset} + g * ${SQL_ROW}, least(${SQL_ROW}, ${length} - g * ${SQL_ROW}), true)` +
        ` FROM generate_series(0, ${rows - 1}) AS g ORDER BY g) TO STDOUT (FORMAT binary)`;
  session.send(encodeQuery(sql));
}

/**
 * The answer to the oldest query sent, its bytes copied into `into` from 0 (which
 * must hold the length asked for): how many came, fewer when the file is shorter;
 * null when the file is not there.
 */
export async function receiveChunk(session: Session, into: Buffer, path: string): Promise<number | null> {
  const rows = new CopyRowsDecoder(into, path);
  session.splitCopyData(ANY);
  try {
    for (;;) {
      const m = session.poll() ?? (await session.next());
      if (m.type === 'CopyData' || m.type === 'CopyDataPart') rows.feed(m.data);
      else if (m.type === 'ErrorResponse') return await session.failAfterError(m.fields, `could not read "${path}"`);
      else if (m.type === 'ReadyForQuery') break;
    }
  } finally {
    session.splitCopyData(null);
  }
  return rows.finish();
}

const ANY = () => true;

/** Reads a chunk at once: sends its query and takes the answer. */
export async function readServerFileChunk(session: Session, into: Buffer, path: string, offset: number, length: number): Promise<number | null> {
  sendChunkQuery(session, path, offset, length);
  return receiveChunk(session, into, path);
}

const enum Part {
  Header,
  Count,
  Length,
  Value,
  Done,
}

/**
 * The values of a binary COPY of rows of one bytea column, fed in pieces as they
 * arrive: header, then per row the field count, the length (-1 for NULL) and the
 * bytes, then the trailer (a field count of -1). The values are copied into
 * `into` one after the other. A NULL first value makes finish() give null;
 * values after a NULL or a short value (the file ended or was dropped) are
 * not taken.
 */
export class CopyRowsDecoder {
  private part = Part.Header;
  /** The fixed-size field being read (header, count, length) and how much of it has come. */
  private readonly small = Buffer.alloc(COPY_HEADER);
  private smallFilled = 0;
  /** Bytes of the current value still to come, and whether they are kept. */
  private valueLeft = 0;
  private keep = true;
  private rows = 0;
  private filled = 0;
  private ended = false;
  private gone = false;

  constructor(
    private readonly into: Buffer,
    private readonly path: string,
  ) {}

  feed(piece: Buffer): void {
    let at = 0;
    while (at < piece.length) {
      if (this.part === Part.Value) {
        const n = Math.min(this.valueLeft, piece.length - at);
        if (this.keep) piece.copy(this.into, this.filled, at, at + n);
        if (this.keep) this.filled += n;
        at += n;
        this.valueLeft -= n;
        if (this.valueLeft === 0) this.part = Part.Count;
        continue;
      }
      if (this.part === Part.Done) throw this.bad();
      const want = this.part === Part.Header ? COPY_HEADER : this.part === Part.Count ? 2 : 4;
      const n = Math.min(want - this.smallFilled, piece.length - at);
      piece.copy(this.small, this.smallFilled, at, at + n);
      this.smallFilled += n;
      at += n;
      if (this.smallFilled < want) continue;
      this.smallFilled = 0;
      this.field();
    }
  }

  /** A fixed-size field has come whole in `small`. */
  private field(): void {
    if (this.part === Part.Header) {
      if (this.small.toString('latin1', 0, 6) !== 'PGCOPY') throw this.bad();
      this.part = Part.Count;
      return;
    }
    if (this.part === Part.Count) {
      const count = this.small.readInt16BE(0);
      if (count === -1) this.part = Part.Done;
      else if (count === 1) this.part = Part.Length;
      else throw this.bad();
      return;
    }
    const n = this.small.readInt32BE(0);
    const first = this.rows++ === 0;
    this.part = Part.Count;
    if (n === -1) {
      if (first) this.gone = true;
      this.ended = true;
      return;
    }
    if (n < 0 || n > SQL_ROW) throw this.bad();
    this.keep = !this.ended;
    if (this.keep && this.filled + n > this.into.length) throw this.bad();
    if (n < SQL_ROW) this.ended = true;
    if (n > 0) {
      this.valueLeft = n;
      this.part = Part.Value;
    }
  }

  /** Bytes copied, or null when the file is gone; throws when the COPY did not end as it must. */
  finish(): number | null {
    if (this.part !== Part.Done || this.rows === 0) throw this.bad();
    return this.gone ? null : this.filled;
  }

  private bad(): PgpitrError {
    return new PgpitrError('ERR_PROTOCOL', `the server's binary COPY of "${this.path}" is not the rows of one value asked for`);
  }
}
