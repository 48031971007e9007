// The thread of an EncodingThread (encoding-thread.ts): opens a file (created
// exclusively), compresses each block it is handed, writes the frames at the
// end of the file and hands the block back; on close, syncs when asked and
// closes. One file at a time.

import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { syncEncoder } from './compress/sync-encoder.js';
import type { CompressionAlgorithm } from './compress/common.js';
import { writeAll } from './file-writable.js';
import type { EncodingReply } from './encoding-thread.js';
import { exitOnRequest } from '../common/thread-exit.js';

const BLOCK = 1024 * 1024;
const { compression, level } = workerData as { compression: CompressionAlgorithm; level: number | undefined };
const port = parentPort!;
exitOnRequest(port);
const encoder = syncEncoder(compression, level);
const out = encoder ? Buffer.allocUnsafeSlow(encoder.bound(BLOCK)) : Buffer.alloc(0);

type Request =
  | { kind: 'open'; path: string; sync: boolean; mode: number }
  | { kind: 'block'; block: ArrayBuffer; length: number }
  | { kind: 'close' };

let file: { fd: number; path: string; sync: boolean; position: number } | null = null;
let failed = false;

function reply(m: EncodingReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

function fail(action: string, path: string, e: unknown): void {
  failed = true;
  const err = e as NodeJS.ErrnoException;
  reply({ kind: 'failed', action, path, message: err.message, ...(err.code ? { code: err.code } : {}) });
  if (file) {
    try {
      closeSync(file.fd);
    } catch {
      /* already failing */
    }
    file = null;
  }
}

port.on('message', (m: Request) => {
  if (m.kind === 'open') {
    failed = false;
    if (!encoder) {
      fail('compress', '', new Error(`no synchronous ${compression} compressor in this thread`));
      return;
    }
    try {
      file = { fd: openSync(m.path, 'wx', m.mode), path: m.path, sync: m.sync, position: 0 };
    } catch (e) {
      fail('create', m.path, e);
    }
    return;
  }
  if (m.kind === 'block') {
    if (failed || !file) return;
    try {
      const n = encoder!.encode(Buffer.from(m.block, 0, m.length), out, 0);
      writeAll(file.fd, out.subarray(0, n), file.path, file.position);
      file.position += n;
    } catch (e) {
      fail('write to', file.path, (e as { cause?: unknown }).cause ?? e);
      return;
    }
    reply({ kind: 'back', block: m.block }, [m.block]);
    return;
  }
  if (failed || !file) return;
  const f = file;
  file = null;
  try {
    if (f.sync) fsyncSync(f.fd);
    closeSync(f.fd);
  } catch (e) {
    fail('fsync', f.path, e);
    return;
  }
  reply({ kind: 'closed', bytes: f.position });
});
