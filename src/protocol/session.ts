// A protocol session over a socket taken from node-postgres after start-up.
// Reads run ahead of the parser by at most READ_AHEAD bytes: chunks are queued
// as they arrive, and the socket is paused while the queue is full, so a slow
// consumer (a slow disk) leaves data in the kernel's socket buffer and TCP (or
// the Unix socket) slows the server; memory never grows with the stream.
// Reading ahead, rather than one read per parser request, lets each turn of the
// event loop empty the kernel's buffer: the server can go on sending while we
// compress and write, with a third of the system calls (measured with strace
// on a 1 GB backup: 37k epoll_wait and 6.7k epoll_ctl calls become 14k and ~0).

import type { Duplex } from 'node:stream';
import { BackendParser } from './backend-parser.js';
import type { BackendMessage } from './backend-parser.js';
import { encodeQuery, encodeTerminate } from './frontend-messages.js';
import { PgpitrError, ServerError } from '../common/errors.js';
import type { ServerErrorFields } from '../common/errors.js';
import type { ConnectionSettings } from './conninfo.js';
import { startConnection } from './pg-startup.js';
import type { SocketReads } from './socket-reads.js';
import type { ReplicationMode } from './pg-startup.js';

export interface ResultSet {
  columns: string[];
  rows: (string | null)[][];
  tag: string;
}

export type NoticeListener = (fields: ServerErrorFields) => void;

/** Bytes read from the socket before the parser asks for them, at most (plus one chunk). */
const READ_AHEAD = 1024 * 1024;

export class Session {
  private readonly parser = new BackendParser();
  private closed = false;
  private closeReason: Error | null = null;
  private waiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  // Chunks read from the socket and not yet fed to the parser.
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private paused = false;
  onNotice: NoticeListener = () => {};
  /** True while next() waits for bytes: everything received so far has been handled. */
  get idle(): boolean {
    return this.waiter !== null;
  }

  /** Called when next() has handled every byte received and is about to wait for more. */
  beforeWait: (() => void | Promise<void>) | null = null;

  /** The chunk the parser was last fed: handed back to `reads` when the next is taken, while lending. */
  private fed: Buffer | null = null;

  private constructor(
    private readonly socket: Duplex,
    private readonly reads: SocketReads | null,
    readonly backendPid: number,
    readonly serverParameters: Map<string, string>,
    readonly label: string,
  ) {
    const wake = () => {
      const w = this.waiter;
      this.waiter = null;
      w?.resolve();
    };
    const fail = (e: Error) => {
      if (!this.closeReason) this.closeReason = e;
      const w = this.waiter;
      this.waiter = null;
      w?.reject(this.closeReason);
    };
    const received = (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queued += chunk.length;
      if (this.queued >= READ_AHEAD && !this.paused) {
        this.paused = true;
        socket.pause();
      }
      wake();
    };
    if (reads) reads.deliver = received;
    else socket.on('data', received);
    socket.resume();
    const lost = (why: string, cause?: Error) =>
      fail(new PgpitrError('ERR_CONNECTION_LOST', `${label}: ${why}`, {
        hint: 'the server may have been stopped or restarted, the connection terminated (pg_terminate_backend) or the network cut; check the server log, then run the command again',
        ...(cause ? { cause } : {}),
      }));
    socket.on('end', () => lost('the server closed the connection unexpectedly'));
    socket.on('close', () => lost('connection to the server lost'));
    socket.on('error', (e: Error) => lost(`connection to the server lost: ${e.message}`, e));
  }

  static async open(settings: ConnectionSettings, mode: ReplicationMode, label: string): Promise<Session> {
    const started = await startConnection(settings, mode, 'pgpitr');
    return new Session(started.socket, started.reads ?? null, started.backendPid, started.serverParameters, label);
  }

  /** server_version_num, e.g. 150004, from the server_version parameter reported at start-up. */
  get serverVersionNum(): number {
    const text = this.serverParameters.get('server_version') ?? '';
    const m = /^(\d+)(?:\.(\d+))?/.exec(text);
    if (!m) return 0;
    const major = Number(m[1]);
    return major >= 10 ? major * 10000 + Number(m[2] ?? 0) : major * 10000 + Number(m[2] ?? 0) * 100;
  }

  /**
   * While on, the caller promises that every message's bytes are handled (written, copied)
   * and no view of them kept by the time it asks for the next message (poll, next): each
   * socket chunk's memory then takes a later read (socket-reads.ts). Without our own socket
   * (one from node-postgres) this does nothing.
   */
  lendReads(on: boolean): void {
    if (!this.reads) return;
    this.reads.lend(on);
    this.fed = null;
  }

  /** See BackendParser.splitCopyData: lets next() return CopyDataPart pieces; null turns it off. */
  splitCopyData(accept: ((firstByte: number) => boolean) | null): void {
    this.parser.splitCopyData = accept;
  }

  send(bytes: Buffer): void {
    if (this.closed) throw new PgpitrError('ERR_CONNECTION_LOST', `${this.label}: connection already closed`);
    this.socket.write(bytes);
  }

  /**
   * The next message if it has already arrived, else null (then await next()):
   * lets a loop over many small messages go on without a promise for each.
   * NoticeResponse and ParameterStatus are handled here.
   */
  poll(): BackendMessage | null {
    for (;;) {
      const msg = this.parser.next();
      if (msg !== null) {
        if (msg.type === 'NoticeResponse') {
          this.onNotice(msg.fields);
          continue;
        }
        if (msg.type === 'ParameterStatus') {
          this.serverParameters.set(msg.name, msg.value);
          continue;
        }
        return msg;
      }
      // The parser has handled every byte of the chunk it was fed, and the caller every message.
      if (this.fed !== null) {
        this.reads!.giveBack(this.fed);
        this.fed = null;
      }
      const chunk = this.take();
      if (chunk === null) return null;
      this.parser.feed(chunk);
      if (this.reads?.lending) this.fed = chunk;
    }
  }

  /** Next message from the server; NoticeResponse and ParameterStatus are handled here. */
  async next(): Promise<BackendMessage> {
    for (;;) {
      const msg = this.poll();
      if (msg !== null) return msg;
      if (this.closeReason) throw this.closeReason;
      if (this.beforeWait) {
        // Everything received so far is handled: the moment to flush and report.
        await this.beforeWait();
        if (this.queue.length > 0) continue;
      }
      await new Promise<void>((resolve, reject) => {
        this.waiter = { resolve, reject };
      });
    }
  }

  /** The oldest unparsed chunk; resumes reading once the queue is half empty. */
  private take(): Buffer | null {
    const chunk = this.queue.shift();
    if (chunk === undefined) return null;
    this.queued -= chunk.length;
    if (this.paused && this.queued <= READ_AHEAD / 2) {
      this.paused = false;
      this.socket.resume();
    }
    return chunk;
  }

  /** query(), its values decoded one character per byte (Buffer.from(v, 'latin1') gives the bytes the server sent). */
  async queryBytes(sql: string): Promise<ResultSet[]> {
    this.parser.rowEncoding = 'latin1';
    try {
      return await this.query(sql);
    } finally {
      this.parser.rowEncoding = 'utf8';
    }
  }

  /** Simple-protocol query; collects every result set. Throws ServerError after ReadyForQuery. */
  async query(sql: string): Promise<ResultSet[]> {
    this.send(encodeQuery(sql));
    const results: ResultSet[] = [];
    let current: ResultSet | null = null;
    let error: ServerErrorFields | null = null;
    for (;;) {
      const msg = await this.next();
      switch (msg.type) {
        case 'RowDescription':
          current = { columns: msg.fields, rows: [], tag: '' };
          break;
        case 'DataRow':
          current?.rows.push(msg.values);
          break;
        case 'CommandComplete':
          results.push(current ? { ...current, tag: msg.tag } : { columns: [], rows: [], tag: msg.tag });
          current = null;
          break;
        case 'ErrorResponse':
          error = msg.fields;
          break;
        case 'ReadyForQuery':
          if (error) throw new ServerError(error, `${this.label}: ${firstWord(sql)} failed`);
          return results;
        case 'EmptyQueryResponse':
          break;
        default:
          throw new PgpitrError('ERR_PROTOCOL', `${this.label}: unexpected ${msg.type} in reply to ${firstWord(sql)}`);
      }
    }
  }

  /** Waits for ReadyForQuery after an error reported mid-stream, then throws it. */
  async failAfterError(fields: ServerErrorFields, context: string): Promise<never> {
    const err = new ServerError(fields, context);
    try {
      for (;;) {
        const msg = await this.next();
        if (msg.type === 'ReadyForQuery') break;
      }
    } catch {
      /* the connection may be gone already */
    }
    throw err;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.write(encodeTerminate());
    } catch {
      /* ignore */
    }
    this.socket.end();
    this.socket.destroy();
  }

  /** Drops the connection without a goodbye: the server aborts whatever it was doing. */
  abort(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

function firstWord(sql: string): string {
  return sql.trim().split(/[\s(]+/)[0] ?? sql;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
