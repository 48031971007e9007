// Drives one BASE_BACKUP on a replication session and turns both wire layouts
// into one event sequence for the backup engine:
//   13-14: result(start) result(tablespaces) {CopyOut per tablespace, base last}
//          [CopyOut manifest] result(end); tar streams come without the two
//          terminating zero blocks, which we add so consumers see whole archives.
//   15+  : result(start) result(tablespaces) one CopyOut with 'n'/'d'/'m'/'p'
//          payloads, result(end).
// Every handler may return a promise; the next message is not read until it
// settles, which is how a slow sink slows the server.

import type { Session } from './session.js';
import { encodeQuery } from './frontend-messages.js';
import { decodeBaseBackupPayload } from './copy-payloads.js';
import { PgpitrError } from '../common/errors.js';

export interface TablespaceHeader {
  oid: number | null; // null for the main data directory
  location: string | null;
  sizeKb: bigint | null; // null without PROGRESS
}

export interface BaseBackupEvents {
  started(startLsn: string, timeline: number): void | Promise<void>;
  tablespaces(list: TablespaceHeader[]): void | Promise<void>;
  archiveBegin(name: string, tablespace: TablespaceHeader | null): void | Promise<void>;
  archiveData(chunk: Buffer): void | Promise<void>;
  archiveEnd(): void | Promise<void>;
  manifestBegin(): void | Promise<void>;
  manifestData(chunk: Buffer): void | Promise<void>;
  manifestEnd(): void | Promise<void>;
  progress(serverBytesDone: bigint): void;
  finished(endLsn: string, timeline: number): void | Promise<void>;
}

const TAR_TERMINATOR = Buffer.alloc(1024);

export async function runBaseBackup(session: Session, command: string, ev: BaseBackupEvents): Promise<void> {
  session.send(encodeQuery(command));
  const modern = session.serverVersionNum >= 150000;
  let resultIndex = 0;
  let columns: string[] = [];
  let rows: (string | null)[][] = [];
  let tablespaces: TablespaceHeader[] = [];
  let copyIndex = 0; // <15: which CopyOut we are in
  let inCopy = false;
  let current: 'none' | 'archive' | 'manifest' = 'none';

  const closeCurrent = async () => {
    if (current === 'archive') await ev.archiveEnd();
    else if (current === 'manifest') await ev.manifestEnd();
    current = 'none';
  };

  for (;;) {
    const msg = await session.next();
    switch (msg.type) {
      case 'RowDescription':
        columns = msg.fields;
        rows = [];
        break;
      case 'DataRow':
        rows.push(msg.values);
        break;
      case 'CommandComplete':
        if (columns.length === 0) break; // the final "BASE_BACKUP" tag
        if (resultIndex === 0) {
          const row = rows[0];
          if (!row) throw protocolError('missing start position row');
          await ev.started(row[0] ?? '', Number(row[1]));
        } else if (resultIndex === 1) {
          tablespaces = rows.map((r) => ({
            oid: r[0] === null ? null : Number(r[0]),
            location: r[1] ?? null,
            sizeKb: r[2] === null || r[2] === undefined ? null : BigInt(r[2]),
          }));
          await ev.tablespaces(tablespaces);
        } else {
          const row = rows[0];
          if (!row) throw protocolError('missing end position row');
          await ev.finished(row[0] ?? '', Number(row[1]));
        }
        resultIndex++;
        columns = [];
        rows = [];
        break;
      case 'CopyOutResponse':
        inCopy = true;
        if (!modern) {
          if (copyIndex < tablespaces.length) {
            const ts = tablespaces[copyIndex]!;
            await ev.archiveBegin(ts.oid === null ? 'base.tar' : `${ts.oid}.tar`, ts);
            current = 'archive';
          } else {
            await ev.manifestBegin();
            current = 'manifest';
          }
          copyIndex++;
        }
        break;
      case 'CopyData':
        if (!inCopy) throw protocolError('CopyData outside of COPY');
        if (!modern) {
          if (current === 'archive') await ev.archiveData(msg.data);
          else await ev.manifestData(msg.data);
          break;
        }
        {
          const p = decodeBaseBackupPayload(msg.data);
          if (p.kind === 'data') {
            if (current === 'archive') await ev.archiveData(p.data);
            else if (current === 'manifest') await ev.manifestData(p.data);
            else throw protocolError('archive data before any archive started');
          } else if (p.kind === 'new-archive') {
            await closeCurrent();
            const ts = tablespaces.find((t) => (t.location ?? '') === p.tablespacePath) ?? null;
            await ev.archiveBegin(p.archiveName, ts);
            current = 'archive';
          } else if (p.kind === 'manifest') {
            await closeCurrent();
            await ev.manifestBegin();
            current = 'manifest';
          } else {
            ev.progress(p.bytesDone);
          }
        }
        break;
      case 'CopyDone':
        inCopy = false;
        if (!modern && current === 'archive') await ev.archiveData(TAR_TERMINATOR);
        await closeCurrent();
        break;
      case 'ErrorResponse':
        return session.failAfterError(msg.fields, 'base backup');
      case 'ReadyForQuery':
        if (resultIndex < 3) throw protocolError('the server ended BASE_BACKUP before sending the end position');
        return;
      default:
        break;
    }
  }
}

function protocolError(what: string): PgpitrError {
  return new PgpitrError('ERR_PROTOCOL', `unexpected BASE_BACKUP reply: ${what}`);
}
