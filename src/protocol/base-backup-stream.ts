// Drives one BASE_BACKUP on a replication session and turns both wire layouts
// into one event sequence for the backup engine:
//   13-14: result(start) result(tablespaces) {CopyOut per tablespace, base last}
//          [CopyOut manifest] result(end); tar streams come without the two
//          terminating zero blocks, which we add so consumers see whole archives.
//   15+  : result(start) result(tablespaces) one CopyOut with 'n'/'d'/'m'/'p'
//          payloads, result(end).
// Every handler may return a promise; the next message is not read until it
// settles, which is how a slow sink slows the server. Archive and manifest
// data may come in pieces (a message that straddles socket chunks is not
// copied into one buffer), so handlers see arbitrary chunk boundaries.

import type { Session } from './session.js';
import type { BackendMessage } from './backend-parser.js';
import { encodeQuery } from './frontend-messages.js';
import { decodeBaseBackupPayload } from './copy-payloads.js';
import { BaseBackupCopyKind } from './message-codes.js';
import { PgpitrError } from '../common/errors.js';

export interface TablespaceHeader {
  oid: number | null; // null for the main data directory
  location: string | null;
  sizeKb: bigint | null; // null without PROGRESS
}

export interface BaseBackupEvents {
  started(startLsn: string, timeline: number): void | Promise<void>;
  tablespaces(list: TablespaceHeader[]): void | Promise<void>;
  tarBegin(name: string, tablespace: TablespaceHeader | null): void | Promise<void>;
  /** `read`: the tar bytes a compressed chunk holds, when the client's parallel readers compressed it (progress counts those). */
  tarData(chunk: Buffer, read?: number): void | Promise<void>;
  tarEnd(): void | Promise<void>;
  manifestBegin(): void | Promise<void>;
  manifestData(chunk: Buffer): void | Promise<void>;
  manifestEnd(): void | Promise<void>;
  progress(serverBytesDone: bigint): void;
  finished(endLsn: string, timeline: number): void | Promise<void>;
}

const TAR_TERMINATOR = Buffer.alloc(1024);

/**
 * `tarDataLent`: the events keep no reference to a tarData() chunk once the call returned
 * or its promise settled (BackupSink.lendTarData); the session may then read into that
 * memory again (Session.lendReads). Manifest bytes are copied for their handler then.
 */
export async function runBaseBackup(session: Session, command: string, ev: BaseBackupEvents, tarDataLent = false): Promise<void> {
  const modern = session.serverVersionNum >= 150000;
  // Before 15 every CopyData is archive or manifest bytes; from 15 on, those of kind 'd'.
  session.splitCopyData(modern ? (kind) => kind === BaseBackupCopyKind.Data : () => true);
  session.lendReads(tarDataLent);
  try {
    await new Driver(session, ev, modern, tarDataLent).run(command);
  } finally {
    session.lendReads(false);
    session.splitCopyData(null);
  }
}

/**
 * The loop over the reply. Archive and manifest bytes, nearly every message, take
 * a short path (bytesOf, emit) and everything else goes to handle(): the loop the
 * JIT optimizes for the stream stays small. One loop over the whole switch took
 * 51 ms of optimizing (twice: a rare message deoptimized it), this one 7 ms; that
 * runs on another core, but on 2 cores one the server needs.
 */
class Driver {
  private resultIndex = 0;
  private columns: string[] = [];
  private rows: (string | null)[][] = [];
  private tablespaces: TablespaceHeader[] = [];
  private copyIndex = 0; // <15: which CopyOut we are in
  private inCopy = false;
  private current: 'none' | 'tar' | 'manifest' = 'none';

  constructor(
    private readonly session: Session,
    private readonly ev: BaseBackupEvents,
    private readonly modern: boolean,
    private readonly lent: boolean,
  ) {}

  async run(command: string): Promise<void> {
    this.session.send(encodeQuery(command));
    for (;;) {
      const msg = this.session.poll() ?? (await this.session.next());
      const data = this.bytesOf(msg);
      if (data !== null) {
        if (data.length > 0) {
          // A promise only when the handler returned one: awaiting a plain value
          // would cost a microtask per message.
          const pending = this.emit(data);
          if (pending) await pending;
        }
      } else if (await this.handle(msg)) {
        return;
      }
    }
  }

  /** The archive or manifest bytes a message carries, or null for any other message. */
  private bytesOf(msg: BackendMessage): Buffer | null {
    if (msg.type === 'CopyDataPart') {
      // A piece of archive or manifest data (only those are split, see runBaseBackup).
      if (!this.inCopy) throw protocolError('CopyData outside of COPY');
      return this.modern && msg.first ? msg.data.subarray(1) : msg.data;
    }
    if (msg.type !== 'CopyData') return null;
    if (!this.inCopy) throw protocolError('CopyData outside of COPY');
    if (!this.modern) return msg.data;
    return msg.data[0] === BaseBackupCopyKind.Data ? msg.data.subarray(1) : null;
  }

  private emit(data: Buffer): void | Promise<void> {
    if (this.current === 'tar') return this.ev.tarData(data);
    if (this.current === 'manifest' || !this.modern) return this.ev.manifestData(this.lent ? Buffer.from(data) : data);
    throw protocolError('tar data before any tar file started');
  }

  private async closeCurrent(): Promise<void> {
    if (this.current === 'tar') await this.ev.tarEnd();
    else if (this.current === 'manifest') await this.ev.manifestEnd();
    this.current = 'none';
  }

  /** The tablespace (null: the base) an archive is for, which must be one the server listed. */
  private announced(tarName: string, path: string): TablespaceHeader | null {
    const ts = this.tablespaces.find((t) => (t.location ?? '') === path);
    if (ts === undefined) {
      throw new PgpitrError('ERR_PROTOCOL', `unexpected BASE_BACKUP reply: tar file "${tarName}" is for tablespace "${path}", which the server did not list`, {
        hint: 'a PostgreSQL server only sends the tablespaces it announced; check who answers at that address',
      });
    }
    return ts.oid === null ? null : ts;
  }

  /** Every message but archive and manifest bytes; true once the reply is complete. */
  private async handle(msg: BackendMessage): Promise<boolean> {
    const ev = this.ev;
    switch (msg.type) {
      case 'RowDescription':
        this.columns = msg.fields;
        this.rows = [];
        break;
      case 'DataRow':
        this.rows.push(msg.values);
        break;
      case 'CommandComplete':
        if (this.columns.length === 0) break; // the final "BASE_BACKUP" tag
        if (this.resultIndex === 0) {
          const row = this.rows[0];
          if (!row) throw protocolError('missing start position row');
          await ev.started(row[0] ?? '', Number(row[1]));
        } else if (this.resultIndex === 1) {
          this.tablespaces = this.rows.map((r) => ({
            oid: r[0] === null ? null : Number(r[0]),
            location: r[1] ?? null,
            sizeKb: r[2] === null || r[2] === undefined ? null : BigInt(r[2]),
          }));
          await ev.tablespaces(this.tablespaces);
        } else {
          const row = this.rows[0];
          if (!row) throw protocolError('missing end position row');
          await ev.finished(row[0] ?? '', Number(row[1]));
        }
        this.resultIndex++;
        this.columns = [];
        this.rows = [];
        break;
      case 'CopyOutResponse':
        this.inCopy = true;
        if (!this.modern) {
          if (this.copyIndex < this.tablespaces.length) {
            const ts = this.tablespaces[this.copyIndex]!;
            await ev.tarBegin(ts.oid === null ? 'base.tar' : `${ts.oid}.tar`, ts);
            this.current = 'tar';
          } else {
            await ev.manifestBegin();
            this.current = 'manifest';
          }
          this.copyIndex++;
        }
        break;
      case 'CopyData': {
        // Servers 15+: a payload other than archive data ('d' is taken by bytesOf).
        const p = decodeBaseBackupPayload(msg.data);
        if (p.kind === 'new-archive') {
          await this.closeCurrent();
          await ev.tarBegin(checkTarName(p.archiveName), this.announced(p.archiveName, p.tablespacePath));
          this.current = 'tar';
        } else if (p.kind === 'manifest') {
          await this.closeCurrent();
          await ev.manifestBegin();
          this.current = 'manifest';
        } else if (p.kind === 'progress') {
          ev.progress(p.bytesDone);
        }
        break;
      }
      case 'CopyDone':
        this.inCopy = false;
        if (!this.modern && this.current === 'tar') await ev.tarData(TAR_TERMINATOR);
        await this.closeCurrent();
        break;
      case 'ErrorResponse':
        return this.session.failAfterError(msg.fields, 'base backup');
      case 'ReadyForQuery':
        if (this.resultIndex < 3) throw protocolError('the server ended BASE_BACKUP before sending the end position');
        return true;
      default:
        break;
    }
    return false;
  }
}

/**
 * Servers 15+ name each archive; the name becomes a file name (-F tar), so it
 * must be one: not empty, no directory part, not hidden ("." or ".." either).
 */
export function checkTarName(name: string): string {
  if (name === '' || name.startsWith('.') || name.includes('/') || name.includes('\\')) {
    throw new PgpitrError('ERR_UNSAFE_PATH', `refusing archive name "${name}" sent by the server: it is not a plain file name`, {
      hint: 'a PostgreSQL server names its archives base.tar or <oid>.tar; check who answers at that address',
    });
  }
  return name;
}

function protocolError(what: string): PgpitrError {
  return new PgpitrError('ERR_PROTOCOL', `unexpected BASE_BACKUP reply: ${what}`);
}
