// receive-wal as a child process (the way a user runs it), and polling helpers
// for the tests that watch what it writes.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { CLI } from './pgpitr.js';
import type { TestCluster } from '../harness/cluster.js';

export interface RunningReceiver {
  log(): string;
  exited: Promise<number | null>;
  /** SIGINT: a clean stop. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash at whatever instant it is. */
  kill(): Promise<number | null>;
}

export function startReceiver(args: string[], env: NodeJS.ProcessEnv): RunningReceiver {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'receive-wal', '-v', ...args], {
    env: { ...process.env, ...env, PGPITR_RECONNECT_DELAY_MS: '300' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return {
    log: () => log,
    exited,
    async stop() {
      child.kill('SIGINT');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

export async function until(what: string, fn: () => boolean | Promise<boolean>, detail: () => string = () => '', timeoutMs = 60_000, everyMs = 100): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}\n${detail()}`);
}

/**
 * Waits until the receiver has WAL in hand: it logs "receiving <segment>" when the first bytes of a
 * segment arrive. A server with nothing to write sends nothing, and one just switched to a new segment
 * has not a byte of it yet: the first would come with its next running-xacts record, 15-20 s later.
 * So, while waiting, a transaction is committed on `writer` (the primary, also when streaming from its
 * standby), which the server sends at once.
 */
export async function untilReceiving(rx: RunningReceiver, writer: TestCluster, what = 'streaming'): Promise<void> {
  await until(what, async () => {
    if (/receiving/.test(rx.log())) return true;
    await writer.sql('select txid_current()');
    return false;
  }, rx.log);
}
