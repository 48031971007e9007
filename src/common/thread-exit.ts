// Ending a worker thread without taking the process down with it.
//
// Worker.terminate() stops a thread wherever its JavaScript is. When that is
// inside a native addon's initialisation (koffi's, which the compression code
// loads in every thread that compresses), the addon cannot throw its pending
// exception and Node aborts the whole process (SIGABRT, no exit code of ours):
// reproduced by terminating threads at random while they require koffi, and
// seen once as a restore that failed on a damaged file and then aborted while
// stopping a copier thread that was still starting.
//
// So a thread is asked to end: the request is a message, handled between two
// of the thread's tasks, never in the middle of loading a module. terminate()
// stays as the fallback for a thread that does not answer in time.

import { once } from 'node:events';
import type { MessagePort, Worker } from 'node:worker_threads';

const EXIT_REQUEST = 'pgpitr:end-thread';
/** How long a thread has to answer before it is terminated. */
const GRACE_MS = 5000;

/**
 * In a worker: ends the thread when the main thread asks (endThread). Call it before the
 * worker adds its own message listener, so that the request never reaches that listener.
 */
export function exitOnRequest(port: MessagePort): void {
  port.on('message', (m: unknown) => {
    if (m === EXIT_REQUEST) process.exit(0);
  });
}

/** In the main thread: ends a thread started with exitOnRequest() in place; resolves once it has exited. */
export async function endThread(worker: Worker, graceMs = GRACE_MS): Promise<void> {
  if (worker.threadId === -1) return; // exited already
  const exited = once(worker, 'exit').then(() => true);
  worker.postMessage(EXIT_REQUEST);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  try {
    if (!(await Promise.race([exited, late]))) await worker.terminate();
  } finally {
    clearTimeout(timer);
  }
}
