// A scripted peer that speaks enough of the protocol v3 to play a WAL sender
// for one BASE_BACKUP: it lets any start-up in (AuthenticationOk), answers
// IDENTIFY_SYSTEM, and replies to BASE_BACKUP with the result sets and archive
// stream a real server sends (servers 15+: one CopyOut with 'n'/'d'/'m'
// payloads; 13-14: one CopyOut per tablespace, base last, tar without its end
// blocks), carrying whatever archives the test crafts. It listens on a Unix
// socket (dir/.s.PGSQL.port) so pgpitr connects with -h dir -p port. Used to
// show what pgpitr does with a stream no honest server sends.

import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { encodeHeader, TAR_END, paddingFor } from '../../src/storage/tar/tar-header.js';
import type { TarEntry } from '../../src/storage/tar/tar-header.js';
import { BackendCode, BaseBackupCopyKind } from '../../src/protocol/message-codes.js';

export interface FakeTablespace {
  oid: number;
  location: string;
}

export interface FakeArchive {
  /** Name in the 'n' message (15+); before 15 the client names archives itself. */
  name: string;
  /** null: the base archive. */
  tablespace: FakeTablespace | null;
  tar: Buffer;
}

export interface FakeBackupScript {
  /** server_version reported at start-up, e.g. "15.8". */
  serverVersion: string;
  tablespaces: FakeTablespace[];
  /** In the order sent; put the base archive last to match servers before 15. */
  archives: FakeArchive[];
}

export interface TarMember {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'hardlink';
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
}

/** A tar archive as PostgreSQL writes it (ustar, with the two end blocks). */
export function craftTar(members: TarMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const type = m.type ?? 'file';
    const content = Buffer.from(m.content ?? '');
    const entry: TarEntry = {
      name: m.name,
      type,
      size: type === 'file' ? content.length : 0,
      mode: m.mode ?? (type === 'directory' ? 0o700 : 0o600),
      mtime: Math.floor(Date.now() / 1000),
      linkname: m.linkname ?? '',
    };
    parts.push(encodeHeader(entry));
    if (type === 'file') parts.push(content, Buffer.alloc(paddingFor(content.length)));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

function message(code: number, body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head[0] = code;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
}

function int16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeInt16BE(n);
  return b;
}

function rowDescription(columns: string[]): Buffer {
  const fields = columns.map((c) => Buffer.concat([cstr(c), int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0)]));
  return message(BackendCode.RowDescription, Buffer.concat([int16(columns.length), ...fields]));
}

function dataRow(values: (string | null)[]): Buffer {
  const cells = values.map((v) => (v === null ? int32(-1) : Buffer.concat([int32(Buffer.byteLength(v)), Buffer.from(v)])));
  return message(BackendCode.DataRow, Buffer.concat([int16(values.length), ...cells]));
}

function resultSet(columns: string[], rows: (string | null)[][], tag: string): Buffer {
  return Buffer.concat([rowDescription(columns), ...rows.map(dataRow), message(BackendCode.CommandComplete, cstr(tag))]);
}

const readyForQuery = () => message(BackendCode.ReadyForQuery, Buffer.from('I'));
const copyOut = () => message(BackendCode.CopyOutResponse, Buffer.concat([Buffer.from([0]), int16(0)]));
const copyData = (payload: Buffer) => message(BackendCode.CopyData, payload);
const copyDone = () => message(BackendCode.CopyDone, Buffer.alloc(0));

function errorResponse(text: string): Buffer {
  return message(BackendCode.ErrorResponse, Buffer.concat([cstr('SERROR'), cstr('C0A000'), cstr(`M${text}`), Buffer.from([0])]));
}

/** The reply to BASE_BACKUP, in the layout of the script's server version. */
function baseBackupReply(script: FakeBackupScript): Buffer {
  const modern = Number(script.serverVersion.split('.')[0]) >= 15;
  const out: Buffer[] = [resultSet(['recptr', 'tli'], [['0/2000028', '1']], 'SELECT')];
  const rows: (string | null)[][] = script.tablespaces.map((t) => [String(t.oid), t.location, null]);
  rows.push([null, null, null]);
  out.push(resultSet(['spcoid', 'spclocation', 'size'], rows, 'SELECT'));
  if (modern) {
    out.push(copyOut());
    for (const a of script.archives) {
      out.push(copyData(Buffer.concat([Buffer.from([BaseBackupCopyKind.NewArchive]), cstr(a.name), cstr(a.tablespace?.location ?? '')])));
      for (let i = 0; i < a.tar.length; i += 8192) {
        out.push(copyData(Buffer.concat([Buffer.from([BaseBackupCopyKind.Data]), a.tar.subarray(i, i + 8192)])));
      }
    }
    out.push(copyDone());
  } else {
    for (const a of script.archives) {
      out.push(copyOut());
      // Before 15 the server leaves out the two end-of-archive blocks.
      const body = a.tar.subarray(0, a.tar.length - TAR_END.length);
      for (let i = 0; i < body.length; i += 8192) out.push(copyData(body.subarray(i, i + 8192)));
      out.push(copyDone());
    }
  }
  out.push(resultSet(['recptr', 'tli'], [['0/2000100', '1']], 'SELECT'));
  out.push(message(BackendCode.CommandComplete, cstr('BASE_BACKUP')), readyForQuery());
  return Buffer.concat(out);
}

export class FakeWalSender {
  /** Every query received, in order. */
  readonly queries: string[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly socketDir: string,
    readonly port: number,
  ) {}

  /** Listens on socketDir/.s.PGSQL.port and serves `script` to every connection. */
  static async start(socketDir: string, port: number, script: FakeBackupScript): Promise<FakeWalSender> {
    const server = createServer();
    const fake = new FakeWalSender(server, socketDir, port);
    server.on('connection', (s) => fake.serve(s, script));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(join(socketDir, `.s.PGSQL.${port}`), () => resolve());
    });
    return fake;
  }

  /** Environment that points pgpitr at this peer. */
  get env(): NodeJS.ProcessEnv {
    return { PGHOST: this.socketDir, PGPORT: String(this.port), PGUSER: 'postgres', PGSSLMODE: 'disable' };
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket, script: FakeBackupScript): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {}); // the client hangs up mid-stream when it refuses it
    let buf = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 4) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          buf = buf.subarray(len);
          started = true;
          socket.write(
            Buffer.concat([
              message(BackendCode.Authentication, int32(0)),
              message(BackendCode.ParameterStatus, Buffer.concat([cstr('server_version'), cstr(script.serverVersion)])),
              message(BackendCode.ParameterStatus, Buffer.concat([cstr('server_encoding'), cstr('UTF8')])),
              message(BackendCode.ParameterStatus, Buffer.concat([cstr('integer_datetimes'), cstr('on')])),
              message(BackendCode.BackendKeyData, Buffer.concat([int32(4242), int32(1)])),
              readyForQuery(),
            ]),
          );
          continue;
        }
        if (buf.length < 5) return;
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) return;
        const code = buf[0]!;
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        if (code === 0x58) {
          socket.end(); // Terminate
          return;
        }
        if (code !== 0x51) continue; // only simple queries are expected
        const sql = body.toString('utf8', 0, body.length - 1);
        this.queries.push(sql);
        socket.write(this.answer(sql, script));
      }
    });
  }

  private answer(sql: string, script: FakeBackupScript): Buffer {
    if (/^IDENTIFY_SYSTEM/i.test(sql)) {
      return Buffer.concat([resultSet(['systemid', 'timeline', 'xlogpos', 'dbname'], [['7000000000000000001', '1', '0/2000028', null]], 'IDENTIFY_SYSTEM'), readyForQuery()]);
    }
    if (/^SHOW data_directory_mode/i.test(sql)) {
      return Buffer.concat([resultSet(['data_directory_mode'], [['0700']], 'SHOW'), readyForQuery()]);
    }
    if (/^BASE_BACKUP/i.test(sql)) return baseBackupReply(script);
    return Buffer.concat([errorResponse(`fake WAL sender: no answer scripted for "${sql}"`), readyForQuery()]);
  }
}
