// A new data directory: initdb's output. With PGPITR_TEST_INITDB_CACHE set (test/run.mjs sets it
// for a whole run, and removes it at the end), initdb runs once per version and arguments into
// that directory, and each cluster gets a copy: a copy of 40 MB takes 0.2-0.4 s, initdb 1.2-2 s,
// some 90 times a run. The copies share initdb's system identifier: a test that needs a system
// of its own (another cluster's WAL refused) asks for a fresh initdb.

import { createHash } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { asPostgres, describeFailure, isRoot, runCommand, serverEnv, serverUserIds } from "./run.js";

const INITDB_TIMEOUT_MS = 180_000;

async function initdb(bin: string, dataDir: string, args: readonly string[], cwd: string): Promise<void> {
  const full = ["-D", dataDir, ...args];
  const inv = asPostgres(join(bin, "initdb"), full);
  const res = await runCommand(inv.cmd, inv.args, { env: serverEnv(), cwd, timeoutMs: INITDB_TIMEOUT_MS });
  if (res.code !== 0) throw new Error(`initdb failed:\n${describeFailure("initdb", full, res)}`);
}

/** The cache's template for these binaries and arguments, made (atomically: another run may be at it) if missing. */
async function template(cache: string, bin: string, args: readonly string[]): Promise<string> {
  const initdbBinary = statSync(join(bin, "initdb"));
  const key = createHash("sha256").update(JSON.stringify([bin, initdbBinary.size, initdbBinary.mtimeMs, args])).digest("hex").slice(0, 16);
  const dir = join(cache, key);
  if (existsSync(join(dir, "PG_VERSION"))) return dir;
  if (!existsSync(cache)) {
    mkdirSync(cache, { recursive: true });
    if (isRoot()) {
      const { uid, gid } = serverUserIds();
      chownSync(cache, uid, gid);
    }
    chmodSync(cache, 0o700);
  }
  const making = `${dir}.tmp-${process.pid}`;
  rmSync(making, { recursive: true, force: true });
  await initdb(bin, making, args, cache);
  try {
    renameSync(making, dir);
  } catch (err) {
    rmSync(making, { recursive: true, force: true });
    if (!existsSync(join(dir, "PG_VERSION"))) throw err;
  }
  return dir;
}

/** Makes `dataDir` (absent) an initdb'ed data directory owned by the server's user. */
export async function newDataDirectory(bin: string, dataDir: string, args: readonly string[], opts: { cwd: string; fresh?: boolean }): Promise<void> {
  const cache = process.env.PGPITR_TEST_INITDB_CACHE;
  if (!cache || opts.fresh) {
    await initdb(bin, dataDir, args, opts.cwd);
    return;
  }
  const from = await template(cache, bin, args);
  const cp = await runCommand("cp", ["-a", from, dataDir], { timeoutMs: INITDB_TIMEOUT_MS });
  if (cp.code !== 0) throw new Error(`copying the initdb template ${from} to ${dataDir} failed:\n${describeFailure("cp", ["-a", from, dataDir], cp)}`);
}
