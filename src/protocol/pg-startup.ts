// Connection start-up for replication and protocol sessions: through node-postgres
// (pg-client.ts: TCP or Unix socket, TLS per sslmode, SCRAM/MD5/password
// authentication, the password file). Over a Unix socket with no password given,
// plain-startup.ts tries first without loading node-postgres, and hands over if the
// server asks for a password. Without TLS, node-postgres works over a socket of ours
// whose reads we recycle once the session has it. Once the server says ReadyForQuery
// we take the socket over (see session.ts).

import type { Duplex } from 'node:stream';
import type { ConnectionSettings } from './conninfo.js';
import { sessionDatabase } from './conninfo.js';
import { plainStartup, startupParameters } from './plain-startup.js';
import { SocketReads } from './socket-reads.js';
import { Socket } from 'node:net';
import type { SocketConstructorOpts } from 'node:net';
import { connectPgClient } from './pg-client.js';
import type { PgClientInternals } from './pg-client.js';
import { connectionError } from './connection-errors.js';

/** The subset of pg.Client we rely on after start-up. */
export interface StartedConnection {
  socket: Duplex;
  /** Present when we made the socket (plain-startup.ts): its reads, which come through this and not as 'data'. */
  reads?: SocketReads;
  backendPid: number;
  serverParameters: Map<string, string>;
}

export type ReplicationMode = 'physical' | 'database' | 'none';

export async function startConnection(
  settings: ConnectionSettings,
  mode: ReplicationMode,
  applicationName: string,
): Promise<StartedConnection> {
  const unixSocket = settings.hostaddr === undefined && (settings.host?.startsWith('/') ?? false);
  if (unixSocket && !settings.password) {
    try {
      const started = await plainStartup(settings, startupParameters(settings, replicationParameter(mode), applicationName));
      if (started) return started;
    } catch (e) {
      throw connectionError(e, settings);
    }
  }
  const parameters = new Map<string, string>();
  // Without TLS, node-postgres authenticates over a socket of ours that reads into memory we give
  // it (socket-reads.ts), as plain-startup.ts's: until the session takes it over, each read goes to
  // node-postgres as a 'data' event; then into buffers the session recycles (a base backup's stream
  // over TCP otherwise gets a fresh 64 KiB buffer per read: more page faults, more system CPU).
  let own: { socket: Socket; reads: SocketReads } | null = null;
  const plainSocket = (): Duplex => {
    const reads = new SocketReads();
    // net.connect() hands `onread` to the Socket it makes; node-postgres calls connect(port, host) itself.
    const socket = new Socket({ onread: reads.onread } as SocketConstructorOpts);
    reads.deliver = (chunk) => socket.emit('data', chunk);
    own = { socket, reads };
    return socket;
  };
  const client = await connectPgClient(
    settings,
    { database: sessionDatabase(settings, replicationParameter(mode)), applicationName, replication: replicationParameter(mode), plainSocket },
    (created) => {
      (created as unknown as PgClientInternals).connection.on('parameterStatus', (m) => parameters.set(m.parameterName, m.parameterValue));
    },
  );
  const internal = client as unknown as PgClientInternals;
  const socket = internal.connection.stream;
  // Take the socket from node-postgres: it is idle (ReadyForQuery) and owns no buffered bytes.
  socket.removeAllListeners('data');
  socket.pause();
  const ours = own as { socket: Socket; reads: SocketReads } | null;
  const reads = ours !== null && ours.socket === socket ? ours.reads : undefined;
  if (reads) reads.deliver = () => {}; // the session's from here on
  return {
    socket,
    ...(reads ? { reads } : {}),
    backendPid: internal.processID ?? 0,
    // pg's own 'end'/'close' handlers stay attached; they only emit on the client,
    // whose 'error' listener swallows them.
    serverParameters: parameters,
  };
}

/** The start-up parameter `replication` for a mode; null: a normal session. */
function replicationParameter(mode: ReplicationMode): string | null {
  return mode === 'none' ? null : mode === 'database' ? 'database' : 'true';
}
