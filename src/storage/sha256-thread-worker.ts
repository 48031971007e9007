// The thread of a Sha256Thread (sha256-thread.ts): hashes the shared memory it is
// pointed at, one request after another, and answers with the digest.

import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { exitOnRequest } from '../common/thread-exit.js';
import type { Sha256Reply } from './sha256-thread.js';

const port = parentPort!;
exitOnRequest(port);
port.on('message', (m: { id: number; memory: SharedArrayBuffer; offset: number; length: number } | string) => {
  if (typeof m !== 'object') return;
  let reply: Sha256Reply;
  try {
    reply = { id: m.id, hex: createHash('sha256').update(new Uint8Array(m.memory, m.offset, m.length)).digest('hex') };
  } catch (e) {
    reply = { id: m.id, error: (e as Error).message };
  }
  port.postMessage(reply);
});
