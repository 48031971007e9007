// Runs the built pgpitr CLI the way a user does (node dist/src/cli/main.js)
// against a test cluster, and judges plain backups with PostgreSQL's tools.

import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync, chmodSync, chownSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, serverUserIds } from '../harness/run.js';
import type { RunResult } from '../harness/run.js';
import type { TestCluster } from '../harness/cluster.js';
import { clientToolDir } from '../harness/pg-versions.js';
import { checkManifest } from './manifest-check.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export function runPgpitr(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): Promise<RunResult> {
  return runCommand(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeoutMs });
}

export function clusterEnv(c: TestCluster): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...c.connectionEnv() };
  return env;
}

/**
 * PostgreSQL's pg_verifybackup where it can judge (the machine has PG 15's; it reads
 * manifest version 1, used up to 16, and parses WAL of its own version only), and
 * our manifest check (sizes and checksums of every file) for the rest.
 */
export async function verifyPlainBackup(dir: string, version: number, opts: { noWal?: boolean } = {}): Promise<string> {
  if (version <= 16) {
    const args = ['-i', 'pgpitr_backup.state'];
    if (version !== 15 || opts.noWal) args.push('-n');
    args.push(dir);
    const r = await runCommand(join(clientToolDir(), 'pg_verifybackup'), args);
    if (r.code !== 0) throw new Error(`pg_verifybackup failed on ${dir}:\n${r.stdout}${r.stderr}`);
    return 'pg_verifybackup';
  }
  await checkManifest(dir, ['pgpitr_backup.state']);
  return 'manifest check';
}

export function readState(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'pgpitr_backup.state'), 'utf8')) as Record<string, unknown>;
}

export function isEmptyOrMissing(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

/** Hand a directory tree to the postgres user so a restored copy can start. */
export function chownTree(path: string): void {
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = serverUserIds();
  const walk = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st || !(st.isDirectory() || st.isFile())) return;
    chownSync(p, uid, gid);
    if (st.isDirectory()) {
      chmodSync(p, 0o700);
      for (const n of readdirSync(p)) walk(join(p, n));
    }
  };
  walk(path);
}
