// Child-process helpers for tests: run a command with a timeout and collect its output,
// and wrap server binaries so they run as the unprivileged `postgres` user when we are root
// (PostgreSQL refuses to run as root).

import { spawn, spawnSync } from "node:child_process";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  timeoutMs?: number;
  cwd?: string;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface Invocation {
  cmd: string;
  args: string[];
}

export const SERVER_USER = "postgres";
const DEFAULT_TIMEOUT_MS = 120_000;
const KILL_GRACE_MS = 2_000;

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** `runuser -u postgres -- cmd args...` when root, the command unchanged otherwise. */
export function asPostgres(cmd: string, args: readonly string[]): Invocation {
  if (isRoot()) return { cmd: "runuser", args: ["-u", SERVER_USER, "--", cmd, ...args] };
  return { cmd, args: [...args] };
}

/**
 * Runs a command, collecting stdout/stderr. Never rejects on a non-zero exit: check `code`.
 * Rejects only if the command cannot be spawned. On timeout the child's process group gets
 * SIGTERM, then SIGKILL after a short grace period, and `timedOut` is set.
 */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, [...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // own process group, so a timeout kill also reaches grandchildren
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;

    const killGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
    }, timeoutMs);

    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      resolvePromise({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    });
    child.stdin.on("error", () => {
      /* child may exit before reading its input */
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** runCommand via asPostgres(). */
export function runAsPostgres(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const inv = asPostgres(cmd, args);
  return runCommand(inv.cmd, inv.args, opts);
}

/** Like runCommand but throws (with output) unless the exit code is 0. */
export async function runChecked(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const res = await runCommand(cmd, args, opts);
  if (res.code !== 0) throw new Error(describeFailure(cmd, args, res));
  return res;
}

export function describeFailure(cmd: string, args: readonly string[], res: RunResult): string {
  const how = res.timedOut ? "timed out" : res.signal ? `killed by ${res.signal}` : `exited with ${res.code}`;
  return [
    `${cmd} ${args.join(" ")} ${how}`,
    res.stdout.trim() ? `stdout:\n${res.stdout.trimEnd()}` : "",
    res.stderr.trim() ? `stderr:\n${res.stderr.trimEnd()}` : "",
  ]
    .filter((s) => s !== "")
    .join("\n");
}

let cachedIds: { uid: number; gid: number } | undefined;

/** uid/gid of the server user (only meaningful when we run as root). */
export function serverUserIds(): { uid: number; gid: number } {
  if (cachedIds) return cachedIds;
  const uid = spawnSync("id", ["-u", SERVER_USER], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", SERVER_USER], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error(`user "${SERVER_USER}" not found; it is needed to run PostgreSQL as root`);
  }
  cachedIds = { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  return cachedIds;
}

/**
 * Environment for server binaries: the caller's, minus PG* variables that could redirect them,
 * and minus NODE_EXTRA_CA_CERTS: the archive_command and restore_command a server runs start Node,
 * and that variable costs every start ~80 ms on this machine (Node then builds its whole root
 * certificate store up front). No test reaches a TLS server but its own, whose CA it names.
 */
export function serverEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("PG") && k !== "NODE_EXTRA_CA_CERTS") env[k] = v;
  }
  env.LC_ALL = "C";
  return { ...env, ...extra };
}
