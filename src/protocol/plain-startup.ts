// Start-up for the common local case, where the server asks for no password
// (trust or peer over a Unix socket): StartupMessage, then AuthenticationOk,
// ParameterStatus, BackendKeyData and ReadyForQuery. It spares every command the
// loading of node-postgres (~20 ms of a start-up that pg_basebackup does in 26).
// The moment the server asks for any authentication, the socket is closed (a
// client may hang up there: the server logs nothing, as when psql goes back to
// prompt for a password) and the caller starts over through node-postgres, which
// does all authentication, ~/.pgpass and TLS (pg-startup.ts). Nothing of
// authentication is hand-rolled here.

import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { userInfo } from 'node:os';
import type { ConnectionSettings } from './conninfo.js';

export interface PlainStarted {
  socket: Socket;
  backendPid: number;
  serverParameters: Map<string, string>;
}

/** What the server answered instead of letting us in; shaped like node-postgres' errors. */
export class StartupRefused extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly detail: string | undefined,
    readonly hint: string | undefined,
  ) {
    super(message);
  }
}

const AUTH = 0x52; // 'R'
const PARAMETER_STATUS = 0x53; // 'S'
const BACKEND_KEY = 0x4b; // 'K'
const READY = 0x5a; // 'Z'
const ERROR = 0x45; // 'E'

/** The started connection, or null when the server wants authentication (then use node-postgres). */
export function plainStartup(settings: ConnectionSettings, startupParameters: Record<string, string>): Promise<PlainStarted | null> {
  const path = `${settings.host}/.s.PGSQL.${settings.port}`;
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const parameters = new Map<string, string>();
    let backendPid = 0;
    let pending: Buffer = Buffer.alloc(0);
    let settled = false;
    const timer = settings.connect_timeout ? setTimeout(() => fail(new Error(`timeout expired after ${settings.connect_timeout} s`)), settings.connect_timeout * 1000) : null;
    const finish = (result: PlainStarted | null) => {
      settled = true;
      if (timer) clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('error', fail);
      socket.removeListener('close', onClose);
      if (result === null) socket.destroy();
      else socket.pause();
      resolve(result);
    };
    function fail(e: Error): void {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      socket.destroy();
      reject(e);
    }
    function onClose(): void {
      fail(new Error('server closed the connection unexpectedly'));
    }
    function onData(chunk: Buffer): void {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (!settled && pending.length >= 5) {
        const length = pending.readInt32BE(1);
        if (length < 4 || length > 1 << 20) return fail(new Error(`invalid message length ${length} during start-up`));
        if (pending.length < 1 + length) return;
        const code = pending[0]!;
        const body = pending.subarray(5, 1 + length);
        pending = pending.subarray(1 + length);
        switch (code) {
          case AUTH:
            if (body.readInt32BE(0) !== 0) return finish(null); // a password, SASL, GSS...: node-postgres' job
            break;
          case PARAMETER_STATUS: {
            const [name, value] = cstrings(body);
            parameters.set(name ?? '', value ?? '');
            break;
          }
          case BACKEND_KEY:
            backendPid = body.readInt32BE(0);
            break;
          case READY:
            // Nothing follows ReadyForQuery until we send: the socket is handed over empty.
            if (pending.length > 0) return fail(new Error('unexpected data after ReadyForQuery during start-up'));
            return finish({ socket, backendPid, serverParameters: parameters });
          case ERROR: {
            const f = errorFields(body);
            return fail(new StartupRefused(f.get('M') ?? 'the server refused the connection', f.get('C'), f.get('D'), f.get('H')));
          }
          default:
            break; // NoticeResponse, NegotiateProtocolVersion: nothing to do
        }
      }
    }
    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.write(startupMessage(startupParameters));
  });
}

/** The parameters node-postgres would send, so that both paths start identical sessions. */
export function startupParameters(settings: ConnectionSettings, replication: string | null, applicationName: string): Record<string, string> {
  const user = settings.user ?? process.env['USER'] ?? userInfo().username;
  const params: Record<string, string> = { user, database: settings.dbname ?? user, application_name: settings.application_name ?? applicationName };
  if (replication !== null) params['replication'] = replication;
  params['client_encoding'] = 'UTF8';
  return params;
}

function startupMessage(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`, 'utf8'));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, body]);
}

function cstrings(body: Buffer): string[] {
  return body.toString('utf8').split('\0');
}

function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const end = body.indexOf(0, pos + 1);
    if (end < 0) break;
    fields.set(String.fromCharCode(body[pos]!), body.toString('utf8', pos + 1, end));
    pos = end + 1;
  }
  return fields;
}
