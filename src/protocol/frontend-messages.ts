// Encoders for the few frontend messages a replication session sends after
// start-up (which node-postgres performs): Query, CopyData, CopyDone, Terminate,
// and the Standby Status Update carried in CopyData.

import { FrontendCode, ReplicationCopyKind } from './message-codes.js';

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
