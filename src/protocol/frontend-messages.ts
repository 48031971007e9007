// Encoders for the few frontend messages a replication session sends: the
// StartupMessage (when plain-startup.ts, not node-postgres, starts it), Query,
// CopyData, CopyDone, Terminate, and the Standby Status Update carried in CopyData.

import { FrontendCode, ReplicationCopyKind } from './message-codes.js';

const PROTOCOL_3_0 = 3 << 16;

/** StartupMessage, protocol 3.0: length, version, then name/value C strings and a final zero byte. */
export function encodeStartupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.from(Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0', 'utf8');
  const head = Buffer.allocUnsafe(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

export function encodeQuery(sql: string): Buffer {
  const text = Buffer.from(sql, 'utf8');
  const out = Buffer.allocUnsafe(1 + 4 + text.length + 1);
  out[0] = FrontendCode.Query;
  out.writeInt32BE(4 + text.length + 1, 1);
  text.copy(out, 5);
  out[out.length - 1] = 0;
  return out;
}

export function encodeCopyData(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out[0] = FrontendCode.CopyData;
  out.writeInt32BE(4 + payload.length, 1);
  payload.copy(out, 5);
  return out;
}

export function encodeCopyDone(): Buffer {
  return Buffer.from([FrontendCode.CopyDone, 0, 0, 0, 4]);
}

export function encodeTerminate(): Buffer {
  return Buffer.from([FrontendCode.Terminate, 0, 0, 0, 4]);
}

/** Microseconds since 2000-01-01, PostgreSQL's TimestampTz epoch. */
export function pgNow(nowMs = Date.now()): bigint {
  return BigInt(nowMs - 946684800000) * 1000n;
}

export interface StandbyStatus {
  write: bigint;
  flush: bigint;
  apply: bigint;
  replyRequested?: boolean;
  clock?: bigint;
}

export function encodeStandbyStatus(s: StandbyStatus): Buffer {
  const body = Buffer.allocUnsafe(34);
  body[0] = ReplicationCopyKind.StandbyStatusUpdate;
  body.writeBigInt64BE(s.write, 1);
  body.writeBigInt64BE(s.flush, 9);
  body.writeBigInt64BE(s.apply, 17);
  body.writeBigInt64BE(s.clock ?? pgNow(), 25);
  body[33] = s.replyRequested ? 1 : 0;
  return encodeCopyData(body);
}
