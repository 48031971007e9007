// Sans-IO parser for backend messages: feed() socket chunks, next() returns
// one typed message at a time or null when more bytes are needed. It keeps a
// cursor into the current chunk and copies only the bytes of a message that
// straddles chunks; CopyData payloads inside one chunk are zero-copy views.
// A consumer that can take a CopyData payload in pieces (BASE_BACKUP's archive
// data) says so with splitCopyData; a payload that straddles chunks then comes
// as CopyDataPart views of each chunk instead of being copied into one buffer.
// Socket chunks are 64 KiB and the server's archive messages ~32 KiB, so this
// spares copying about half of a backup's bytes, and allocating a buffer each time.

import { BackendCode, ErrorField } from './message-codes.js';
import type { ServerErrorFields } from '../common/errors.js';
import { PgpitrError } from '../common/errors.js';

export type BackendMessage =
  | { type: 'CopyData'; data: Buffer }
  /** One piece of a CopyData payload that straddles chunks, only when splitCopyData allows it. */
  | { type: 'CopyDataPart'; data: Buffer; first: boolean; last: boolean }
  | { type: 'CopyDone' }
  | { type: 'CopyOutResponse' }
  | { type: 'CopyBothResponse' }
  | { type: 'CopyInResponse' }
  | { type: 'RowDescription'; fields: string[] }
  | { type: 'DataRow'; values: (string | null)[] }
  | { type: 'CommandComplete'; tag: string }
  | { type: 'EmptyQueryResponse' }
  | { type: 'ReadyForQuery'; status: string }
  | { type: 'ErrorResponse'; fields: ServerErrorFields }
  | { type: 'NoticeResponse'; fields: ServerErrorFields }
  | { type: 'ParameterStatus'; name: string; value: string }
  /** Start-up only: 0 is AuthenticationOk, anything else a request for credentials. */
  | { type: 'Authentication'; request: number }
  | { type: 'BackendKeyData'; pid: number }
  | { type: 'Unknown'; code: number };

const HEADER = 5; // type byte + Int32 length (which counts itself)
/** Largest message we accept: CopyData from PostgreSQL is far smaller; guards against garbage. */
export const MAX_MESSAGE_LENGTH = 256 * 1024 * 1024;

export class BackendParser {
  /**
   * How DataRow values are decoded: UTF-8 (the client_encoding sessions ask for), or 'latin1' for
   * a value that is bytes, one character per byte (TIMELINE_HISTORY's file: Buffer.from(v, 'latin1')
   * gives them back as the server sent them, whatever the server's encoding).
   */
  rowEncoding: BufferEncoding = 'utf8';

  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  private header = Buffer.alloc(HEADER);
  private headerFilled = 0;
  // A message whose header is read but whose body has not begun (the header ended a chunk).
  private waitingCode = -1;
  private waitingSize = 0;
  // The body of a message that straddles chunks is assembled here.
  private partial: Buffer | null = null;
  private partialCode = 0;
  private partialFilled = 0;
  // Bytes of a split CopyData payload still to come as CopyDataPart.
  private copyRemaining = 0;
  /**
   * Which CopyData payloads, by their first byte, may come in pieces (CopyDataPart,
   * each piece non-empty) when they straddle chunks; null (the default): none, every
   * message comes whole.
   */
  splitCopyData: ((firstByte: number) => boolean) | null = null;

  feed(chunk: Buffer): void {
    if (this.pos < this.chunk.length) {
      throw new Error('BackendParser.feed called before the previous chunk was consumed');
    }
    this.chunk = chunk;
    this.pos = 0;
  }

  /** True when every fed byte has been turned into messages. */
  get drained(): boolean {
    return this.pos >= this.chunk.length && this.partial === null && this.headerFilled === 0 && this.waitingCode < 0 && this.copyRemaining === 0;
  }

  next(): BackendMessage | null {
    const available = this.chunk.length - this.pos;
    if (this.copyRemaining > 0) {
      const n = Math.min(available, this.copyRemaining);
      if (n === 0) return null;
      const data = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.copyRemaining -= n;
      return { type: 'CopyDataPart', data, first: false, last: this.copyRemaining === 0 };
    }
    if (this.partial !== null) {
      const n = Math.min(available, this.partial.length - this.partialFilled);
      this.chunk.copy(this.partial, this.partialFilled, this.pos, this.pos + n);
      this.pos += n;
      this.partialFilled += n;
      if (this.partialFilled < this.partial.length) return null;
      const whole = this.partial;
      this.partial = null;
      return decode(this.partialCode, whole, this.rowEncoding);
    }
    if (this.waitingCode >= 0) {
      if (available === 0) return null;
      const code = this.waitingCode;
      this.waitingCode = -1;
      return this.body(code, this.waitingSize);
    }
    if (this.headerFilled > 0 || available < HEADER) {
      const n = Math.min(available, HEADER - this.headerFilled);
      this.chunk.copy(this.header, this.headerFilled, this.pos, this.pos + n);
      this.pos += n;
      this.headerFilled += n;
      if (this.headerFilled < HEADER) return null;
      this.headerFilled = 0;
      return this.body(this.header[0]!, checkedLength(this.header.readInt32BE(1)) - 4);
    }
    const code = this.chunk[this.pos]!;
    const size = checkedLength(this.chunk.readInt32BE(this.pos + 1)) - 4;
    this.pos += HEADER;
    return this.body(code, size);
  }

  /** A message's body, starting at this.pos: a view when it is all in this chunk. */
  private body(code: number, size: number): BackendMessage | null {
    const available = this.chunk.length - this.pos;
    if (available >= size) {
      const body = this.chunk.subarray(this.pos, this.pos + size);
      this.pos += size;
      return decode(code, body, this.rowEncoding);
    }
    if (available === 0) {
      // Decide with the body's first byte, in the next chunk.
      this.waitingCode = code;
      this.waitingSize = size;
      return null;
    }
    if (code === BackendCode.CopyData && this.splitCopyData?.(this.chunk[this.pos]!)) {
      const data = this.chunk.subarray(this.pos);
      this.pos = this.chunk.length;
      this.copyRemaining = size - available;
      return { type: 'CopyDataPart', data, first: true, last: false };
    }
    this.partial = Buffer.allocUnsafe(size);
    this.partialCode = code;
    this.partialFilled = this.chunk.copy(this.partial, 0, this.pos);
    this.pos = this.chunk.length;
    return null;
  }
}

function checkedLength(length: number): number {
  if (length < 4 || length > MAX_MESSAGE_LENGTH) {
    throw new PgpitrError('ERR_PROTOCOL', `invalid message length ${length} received from the server`, {
      hint: 'the connection is out of sync or not a PostgreSQL server; retry, and report a bug if it persists',
    });
  }
  return length;
}

function decode(code: number, body: Buffer, rowEncoding: BufferEncoding): BackendMessage {
  switch (code) {
    case BackendCode.CopyData:
      return { type: 'CopyData', data: body };
    case BackendCode.CopyDone:
      return { type: 'CopyDone' };
    case BackendCode.CopyOutResponse:
      return { type: 'CopyOutResponse' };
    case BackendCode.CopyBothResponse:
      return { type: 'CopyBothResponse' };
    case BackendCode.CopyInResponse:
      return { type: 'CopyInResponse' };
    case BackendCode.RowDescription:
      return { type: 'RowDescription', fields: decodeRowDescription(body) };
    case BackendCode.DataRow:
      return { type: 'DataRow', values: decodeDataRow(body, rowEncoding) };
    case BackendCode.CommandComplete:
      return { type: 'CommandComplete', tag: cstring(body, 0).value };
    case BackendCode.EmptyQueryResponse:
      return { type: 'EmptyQueryResponse' };
    case BackendCode.ReadyForQuery:
      return { type: 'ReadyForQuery', status: String.fromCharCode(body[0] ?? 0x49) };
    case BackendCode.ErrorResponse:
      return { type: 'ErrorResponse', fields: decodeErrorFields(body) };
    case BackendCode.NoticeResponse:
      return { type: 'NoticeResponse', fields: decodeErrorFields(body) };
    case BackendCode.ParameterStatus: {
      const name = cstring(body, 0);
      return { type: 'ParameterStatus', name: name.value, value: cstring(body, name.next).value };
    }
    case BackendCode.Authentication:
      return { type: 'Authentication', request: body.readInt32BE(0) };
    case BackendCode.BackendKeyData:
      return { type: 'BackendKeyData', pid: body.readInt32BE(0) };
    default:
      return { type: 'Unknown', code };
  }
}

export function cstring(buf: Buffer, start: number): { value: string; next: number } {
  const end = buf.indexOf(0, start);
  if (end < 0) throw new PgpitrError('ERR_PROTOCOL', 'unterminated string in a server message');
  return { value: buf.toString('utf8', start, end), next: end + 1 };
}

function decodeRowDescription(body: Buffer): string[] {
  const count = body.readInt16BE(0);
  const names: string[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const name = cstring(body, pos);
    names.push(name.value);
    pos = name.next + 18; // table oid 4, column 2, type oid 4, size 2, modifier 4, format 2
  }
  return names;
}

function decodeDataRow(body: Buffer, encoding: BufferEncoding): (string | null)[] {
  const count = body.readInt16BE(0);
  const values: (string | null)[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len < 0) {
      values.push(null);
    } else {
      values.push(body.toString(encoding, pos, pos + len));
      pos += len;
    }
  }
  return values;
}

function decodeErrorFields(body: Buffer): ServerErrorFields {
  const fields: ServerErrorFields = {};
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const kind = body[pos]!;
    const text = cstring(body, pos + 1);
    pos = text.next;
    if (kind === ErrorField.SeverityNonLocalized) fields.severity = text.value;
    else if (kind === ErrorField.Severity && fields.severity === undefined) fields.severity = text.value;
    else if (kind === ErrorField.Code) fields.sqlState = text.value;
    else if (kind === ErrorField.Message) fields.message = text.value;
    else if (kind === ErrorField.Detail) fields.detail = text.value;
    else if (kind === ErrorField.Hint) fields.hint = text.value;
  }
  return fields;
}
