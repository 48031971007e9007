// A pgbench load in the background during a backup, and pgbench's balance
// invariant to judge a restored copy: a backup that mixed moments would show
// accounts, tellers, branches and history that disagree.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import type { TestCluster } from '../harness/cluster.js';
import { clientToolDir } from '../harness/pg-versions.js';

/**
 * pgbench -c 2 in the background until stopped; transactions() counts progress lines seen;
 * running() resolves at the first progress line with transactions (a backup started after it
 * runs under load: one over in less than pgbench's first second of progress would see none).
 */
export function startPgbenchLoad(c: TestCluster): { stop(): void; transactions(): number; running(): Promise<void> } {
  const child = spawn(join(clientToolDir(), 'pgbench'), ['-T', '600', '-c', '2', '-n', '-P', '1', 'postgres'], { env: { ...process.env, ...c.connectionEnv() }, stdio: ['ignore', 'ignore', 'pipe'] });
  let tps = 0;
  let started: () => void = () => {};
  let failed: (e: Error) => void = () => {};
  const running = new Promise<void>((res, rej) => {
    started = res;
    failed = rej;
  });
  running.catch(() => undefined);
  const timer = setTimeout(() => {
    child.kill('SIGKILL');
    failed(new Error('the pgbench load showed no transaction within 60 s'));
  }, 60_000);
  child.stderr.on('data', (d: Buffer) => {
    for (const m of d.toString().matchAll(/progress: [\d.]+ s, ([\d.]+) tps/g)) tps += Number(m[1]);
    if (tps > 0) {
      clearTimeout(timer);
      started();
    }
  });
  child.on('error', (e) => failed(e));
  child.on('exit', () => {
    clearTimeout(timer);
    failed(new Error('pgbench exited before it showed a transaction'));
  });
  return { stop: () => child.kill('SIGKILL'), transactions: () => tps, running: () => running };
}

/** pgbench's invariant: what the accounts, tellers and branches hold is what the history says moved. */
export async function pgbenchBalanced(c: TestCluster): Promise<void> {
  const r = await c.sql<{ a: string; b: string; t: string; h: string }>(
    'select (select sum(abalance) from pgbench_accounts)::text a, (select sum(bbalance) from pgbench_branches)::text b, (select sum(tbalance) from pgbench_tellers)::text t, (select coalesce(sum(delta), 0) from pgbench_history)::text h',
  );
  const row = r[0]!;
  assert.ok(row.a === row.b && row.b === row.t && row.t === row.h, `pgbench balances differ: ${JSON.stringify(row)}`);
}

