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
import type { ConnectionSettings } from './conninfo.js';
import { effectiveUser, sessionDatabase } from './conninfo.js';
import { BackendParser } from './backend-parser.js';
import { encodeStartupMessage } from './frontend-messages.js';
import { SocketReads } from './socket-reads.js';


export interface PlainStarted {
  socket: Socket;
  /** The socket's reads (it emits no 'data'): the session takes them over. */
  reads: SocketReads;
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

/** The started connection, or null when the server wants authentication (then use node-postgres). */
export function plainStartup(settings: ConnectionSettings, startupParameters: Record<string, string>): Promise<PlainStarted | null> {
  const path = `${settings.host}/.s.PGSQL.${settings.port}`;
  return new Promise((resolve, reject) => {
    const reads = new SocketReads();
    const socket = createConnection({ path, onread: reads.onread });
    const parser = new BackendParser();
    const parameters = new Map<string, string>();
    let backendPid = 0;
    let settled = false;
    const timer = settings.connect_timeout ? setTimeout(() => fail(new Error(`timeout expired after ${settings.connect_timeout} s`)), settings.connect_timeout * 1000) : null;
    const finish = (result: PlainStarted | null) => {
      settled = true;
      if (timer) clearTimeout(timer);
      reads.deliver = () => {};
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
      try {
        parser.feed(chunk);
        for (let msg = parser.next(); msg !== null && !settled; msg = parser.next()) {
          switch (msg.type) {
            case 'Authentication':
              if (msg.request !== 0) return finish(null); // a password, SASL, GSS...: node-postgres' job
              break;
            case 'ParameterStatus':
              parameters.set(msg.name, msg.value);
              break;
            case 'BackendKeyData':
              backendPid = msg.pid;
              break;
            case 'ReadyForQuery':
              // Nothing follows ReadyForQuery until we send: the socket is handed over empty.
              if (!parser.drained) return fail(new Error('unexpected data after ReadyForQuery during start-up'));
              return finish({ socket, reads, backendPid, serverParameters: parameters });
            case 'ErrorResponse': {
              const f = msg.fields;
              return fail(new StartupRefused(f.message ?? 'the server refused the connection', f.sqlState, f.detail, f.hint));
            }
            default:
              break; // NoticeResponse, NegotiateProtocolVersion: nothing to do
          }
        }
      } catch (e) {
        fail(e as Error); // a malformed message
      }
    }
    reads.deliver = onData;
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.write(encodeStartupMessage(startupParameters));
  });
}

/** The parameters node-postgres would send, so that both paths start identical sessions. */
export function startupParameters(settings: ConnectionSettings, replication: string | null, applicationName: string): Record<string, string> {
  const user = effectiveUser(settings);
  const params: Record<string, string> = {
    user,
    database: sessionDatabase(settings, replication),
    application_name: settings.application_name ?? settings.fallback_application_name ?? applicationName,
  };
  if (replication !== null) params['replication'] = replication;
  if (settings.options) params['options'] = settings.options;
  params['client_encoding'] = 'UTF8';
  return params;
}
