// Decoders for CopyData payloads: BASE_BACKUP's archive stream (servers 15+:
// 'n' new archive, 'm' manifest, 'd' data, 'p' progress) and START_REPLICATION's
// XLogData / keepalive. Pure functions over one payload.

import { BaseBackupCopyKind, ReplicationCopyKind } from './message-codes.js';
import { cstring } from './backend-parser.js';
import { PgpitrError } from '../common/errors.js';

export type BaseBackupPayload =
  | { kind: 'new-archive'; archiveName: string; tablespacePath: string }
  | { kind: 'manifest' }
  | { kind: 'data'; data: Buffer }
  | { kind: 'progress'; bytesDone: bigint };

export function decodeBaseBackupPayload(payload: Buffer): BaseBackupPayload {
  switch (payload[0]) {
    case BaseBackupCopyKind.Data:
      return { kind: 'data', data: payload.subarray(1) };
    case BaseBackupCopyKind.NewArchive: {
      const name = cstring(payload, 1);
      const path = cstring(payload, name.next);
      return { kind: 'new-archive', archiveName: name.value, tablespacePath: path.value };
    }
    case BaseBackupCopyKind.ManifestStart:
      return { kind: 'manifest' };
    case BaseBackupCopyKind.Progress:
      need(payload, 9, 'BASE_BACKUP progress message');
      return { kind: 'progress', bytesDone: payload.readBigInt64BE(1) };
    default:
      throw new PgpitrError('ERR_PROTOCOL', `unexpected BASE_BACKUP CopyData kind 0x${(payload[0] ?? 0).toString(16)}`);
  }
}

export type ReplicationPayload =
  | { kind: 'xlog'; start: bigint; walEnd: bigint; sendTime: bigint; data: Buffer }
  | { kind: 'keepalive'; walEnd: bigint; sendTime: bigint; replyRequested: boolean };

export function decodeReplicationPayload(payload: Buffer): ReplicationPayload {
  switch (payload[0]) {
    case ReplicationCopyKind.XLogData:
      need(payload, 25, 'XLogData message');
      return {
        kind: 'xlog',
        start: payload.readBigInt64BE(1),
        walEnd: payload.readBigInt64BE(9),
        sendTime: payload.readBigInt64BE(17),
        data: payload.subarray(25),
      };
    case ReplicationCopyKind.PrimaryKeepalive:
      need(payload, 18, 'keepalive message');
      return {
        kind: 'keepalive',
        walEnd: payload.readBigInt64BE(1),
        sendTime: payload.readBigInt64BE(9),
        replyRequested: payload[17] === 1,
      };
    default:
      throw new PgpitrError('ERR_PROTOCOL', `unexpected replication CopyData kind 0x${(payload[0] ?? 0).toString(16)}`);
  }
}

// A payload shorter than its kind's fixed header is the server's (or the
// network's) fault: say so, instead of a RangeError from the buffer read.
function need(payload: Buffer, bytes: number, what: string): void {
  if (payload.length < bytes) {
    throw new PgpitrError(
      'ERR_PROTOCOL',
      `truncated ${what} from the server: ${payload.length} bytes, at least ${bytes} expected`,
      { hint: 'something between pgpitr and the server (a proxy, a pooler) altered the stream; connect to the server directly and run the command again' },
    );
  }
}
