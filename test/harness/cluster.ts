// TestCluster: a throw-away PostgreSQL server (any supported major version) for tests.
// Creates/initdb's or adopts a data directory, runs it as the `postgres` user when we are root,
// and guarantees every server it started is stopped when the process exits or is interrupted.

import { spawnSync } from "node:child_process";
import {
  appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import pg from "pg";
import type { QueryResultRow } from "pg";
import { binDir } from "./pg-versions.js";
import { newDataDirectory } from "./initdb.js";
import { asPostgres, describeFailure, isRoot, runCommand, serverEnv, serverUserIds } from "./run.js";

export type StopMode = "smart" | "fast" | "immediate";

export interface CreateClusterOptions {
  version: number;
  /** Used in the temp dir name and in error messages. */
  name?: string;
  /** Extra postgresql.conf settings, appended after the harness defaults (last wins).
   *  Values are single-quoted for you unless they already start with a quote. */
  conf?: Record<string, string>;
  /** pg_hba.conf lines placed before the harness's trust-everything lines. */
  hba?: string[];
  initdbArgs?: string[];
  /**
   * initdb this cluster itself even when the run keeps an initdb template (initdb.ts): it gets a
   * system identifier of its own. Otherwise clusters of one version and arguments share one.
   */
  fresh?: boolean;
}

export interface StartExistingOptions {
  name?: string;
  /** Appended to the data dir's postgresql.conf (postgresql.auto.conf still overrides it). */
  conf?: Record<string, string>;
  /** Wait (pg_ctl -w) until the server accepts connections; default true. */
  wait?: boolean;
  /** Remove the data directory on destroy(); default false (it belongs to the caller). */
  removeDataDir?: boolean;
}

export interface SqlOptions {
  database?: string;
}

const START_TIMEOUT_S = 120;
const LOG_TAIL_LINES = 40;
const MAX_SOCKET_PATH = 100; // sun_path is 108 bytes incl. NUL; leave room for ".s.PGSQL.NNNNN"

const live = new Set<TestCluster>();
let handlersInstalled = false;

function keepTemp(): boolean {
  const v = process.env.PGPITR_TEST_KEEP;
  return v !== undefined && v !== "" && v !== "0";
}

/** chown to the server user (when root) and chmod; no-op ownership change when not root. */
function giveToServer(path: string, mode: number): void {
  if (isRoot()) {
    const { uid, gid } = serverUserIds();
    chownSync(path, uid, gid);
  }
  chmodSync(path, mode);
}

function confValue(v: string): string {
  return v.startsWith("'") ? v : `'${v.replace(/'/g, "''")}'`;
}

function confBlock(title: string, settings: Record<string, string>): string {
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`);
  return `\n# --- ${title} ---\n${lines.join("\n")}\n`;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 40);
}

/** A TCP port that was free a moment ago on 127.0.0.1 (start() retries if it gets taken). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("could not determine a free port"));
        return;
      }
      const { port } = addr;
      srv.close(() => resolvePort(port));
    });
  });
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => emergencyCleanup());
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(signal, () => {
      emergencyCleanup();
      process.exit(code);
    });
  }
}

/** Synchronous: immediate-stop every live server, then remove temp dirs (unless PGPITR_TEST_KEEP). */
function emergencyCleanup(): void {
  const clusters = [...live];
  for (const c of clusters) c.stopSync();
  if (!keepTemp()) for (const c of clusters) c.removeFilesSync();
  live.clear();
}

/** Stops and removes every cluster this process still has. */
const finalizers: (() => Promise<void>)[] = [];

/** Something a test started beside its clusters (an S3 server...), ended by destroyAll after them. */
export function onDestroyAll(fn: () => Promise<void>): void {
  finalizers.push(fn);
}

/**
 * How a server is stopped when its files are removed next: at once, since nothing will read them
 * (a fast stop writes a shutdown checkpoint, and the archiver of an archiving cluster first runs
 * archive_command for every segment still waiting: 0.2-1.7 s a test); cleanly when they are kept
 * for a look (PGPITR_TEST_KEEP).
 */
function stopModeBeforeRemoval(): StopMode {
  return keepTemp() ? "fast" : "immediate";
}

export async function destroyAll(): Promise<void> {
  // Stop everything first so no server loses its data dir while running.
  for (const c of [...live]) await c.stop(stopModeBeforeRemoval()).catch(() => c.stopSync());
  for (const c of [...live]) await c.destroy();
  for (const fn of finalizers.splice(0)) await fn().catch(() => {});
}

export class TestCluster {
  readonly version: number;
  readonly name: string;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly binDir: string;
  /** Unix socket directory (use as PGHOST). */
  readonly host: string;
  private _port: number;
  private running = false;
  private destroyed = false;
  private readonly logFile: string;
  private readonly extraDirs: string[] = [];
  private readonly removeDataDir: boolean;

  private constructor(p: {
    version: number; name: string; baseDir: string; dataDir: string; host: string; port: number; removeDataDir: boolean;
  }) {
    this.version = p.version;
    this.name = p.name;
    this.baseDir = p.baseDir;
    this.dataDir = p.dataDir;
    this.binDir = binDir(p.version);
    this.host = p.host;
    this._port = p.port;
    this.logFile = join(p.baseDir, "server.log");
    this.removeDataDir = p.removeDataDir;
  }

  get port(): number {
    return this._port;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** A new cluster (initdb, with data checksums; or a copy of the run's initdb template: initdb.ts), started. */
  static async create(opts: CreateClusterOptions): Promise<TestCluster> {
    const name = opts.name ?? `pg${opts.version}`;
    const bin = binDir(opts.version); // fail early on a missing version
    const { baseDir, host, extraDirs } = TestCluster.makeBaseDir(name);
    const dataDir = join(baseDir, "data");
    const cluster = new TestCluster({
      version: opts.version, name, baseDir, dataDir, host, port: await freePort(), removeDataDir: true,
    });
    cluster.extraDirs.push(...extraDirs);
    live.add(cluster);
    installExitHandlers();
    try {
      const args = [
        "--data-checksums", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
        ...(opts.initdbArgs ?? []),
      ];
      await newDataDirectory(bin, dataDir, args, { cwd: baseDir, fresh: opts.fresh }).catch((err: unknown) => {
        throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });

      appendFileSync(
        join(dataDir, "postgresql.conf"),
        confBlock("pgpitr test harness", {
          listen_addresses: "127.0.0.1",
          port: String(cluster.port),
          unix_socket_directories: host,
          wal_level: "replica",
          max_wal_senders: "10",
          max_replication_slots: "10",
          fsync: "off",
          shared_buffers: "32MB",
        }) + (opts.conf ? confBlock("test settings", opts.conf) : ""),
      );
      const hba = [
        ...(opts.hba ?? []),
        "local all all trust",
        "local replication all trust",
        "host all all 127.0.0.1/32 trust",
        "host replication all 127.0.0.1/32 trust",
        "host all all ::1/128 trust",
        "host replication all ::1/128 trust",
      ];
      writeFileSync(join(dataDir, "pg_hba.conf"), hba.join("\n") + "\n");
      await cluster.start();
      return cluster;
    } catch (err) {
      await cluster.destroy().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Start an existing data directory (e.g. a restored backup) as a cluster. The directory is
   * chown'ed to the server user and chmod 700; port and socket dir are passed on the command
   * line, so whatever the copied postgresql.conf says about them is overridden.
   */
  static async startExisting(dataDir: string, version: number, opts: StartExistingOptions = {}): Promise<TestCluster> {
    const absData = resolve(dataDir);
    if (!existsSync(join(absData, "PG_VERSION"))) throw new Error(`${absData} is not a PostgreSQL data directory`);
    const pgVersion = readFileSync(join(absData, "PG_VERSION"), "utf8").trim();
    if (pgVersion !== String(version)) {
      throw new Error(`${absData} holds a PostgreSQL ${pgVersion} cluster, not ${version}`);
    }
    const name = opts.name ?? `pg${version}-existing`;
    binDir(version);
    const { baseDir, host, extraDirs } = TestCluster.makeBaseDir(name);
    const cluster = new TestCluster({
      version, name, baseDir, dataDir: absData, host, port: await freePort(), removeDataDir: opts.removeDataDir ?? false,
    });
    cluster.extraDirs.push(...extraDirs);
    live.add(cluster);
    installExitHandlers();
    try {
      if (isRoot()) {
        // A file vanishing under chown (a server of the caller's still exiting) is retried.
        let r = spawnSync("chown", ["-R", "postgres:postgres", absData], { encoding: "utf8" });
        for (let i = 0; i < 5 && r.status !== 0 && /No such file or directory/.test(r.stderr); i++) {
          await new Promise((res) => setTimeout(res, 500));
          r = spawnSync("chown", ["-R", "postgres:postgres", absData], { encoding: "utf8" });
        }
        if (r.status !== 0) throw new Error(`chown -R postgres ${absData} failed: ${r.stderr}`);
      }
      chmodSync(absData, 0o700);
      if (opts.conf) appendFileSync(join(absData, "postgresql.conf"), confBlock("test settings", opts.conf));
      await cluster.start({ wait: opts.wait ?? true });
      return cluster;
    } catch (err) {
      await cluster.destroy().catch(() => undefined);
      throw err;
    }
  }

  /** mkdtemp a base dir for the server user; the socket dir goes inside unless the path is too long. */
  private static makeBaseDir(name: string): { baseDir: string; host: string; extraDirs: string[] } {
    const baseDir = mkdtempSync(join(tmpdir(), `pgpitr-${safeName(name)}-`));
    giveToServer(baseDir, 0o700);
    let host = join(baseDir, "sock");
    const extraDirs: string[] = [];
    if (`${host}/.s.PGSQL.65535`.length > MAX_SOCKET_PATH) {
      host = mkdtempSync("/tmp/pgs-");
      extraDirs.push(host);
    } else {
      mkdirSync(host);
    }
    giveToServer(host, 0o700);
    return { baseDir, host, extraDirs };
  }

  /** Starts the server (pg_ctl -w), retrying with a new port if the chosen one got taken. */
  async start(opts: { wait?: boolean } = {}): Promise<void> {
    if (this.destroyed) throw new Error(`cluster ${this.name} was destroyed`);
    if (this.running) return;
    const wait = opts.wait ?? true;
    for (let attempt = 1; ; attempt++) {
      const logOffset = existsSync(this.logFile) ? readFileSync(this.logFile).length : 0;
      const args = [
        "-D", this.dataDir, "-l", this.logFile, wait ? "-w" : "-W", "-t", String(START_TIMEOUT_S),
        "-o", `-p ${this._port} -k ${shellQuote(this.host)}`, "start",
      ];
      const inv = asPostgres(join(this.binDir, "pg_ctl"), args);
      const res = await runCommand(inv.cmd, inv.args, {
        env: serverEnv(), cwd: this.baseDir, timeoutMs: (START_TIMEOUT_S + 30) * 1000,
      });
      if (res.code === 0) {
        this.running = true;
        return;
      }
      const newLog = existsSync(this.logFile) ? readFileSync(this.logFile).subarray(logOffset).toString("utf8") : "";
      this.running = this.pidFileExists(); // a half-started server must still be stopped later
      if (attempt < 3 && /could not bind|Address already in use/i.test(newLog)) {
        if (this.running) this.stopSync();
        this._port = await freePort();
        continue;
      }
      throw new Error(
        `PostgreSQL ${this.version} (${this.name}) failed to start:\n${describeFailure("pg_ctl", args, res)}\n` +
          `--- server log tail (${this.logFile}) ---\n${this.logTail()}`,
      );
    }
  }

  async stop(mode: StopMode = "fast"): Promise<void> {
    if (!this.running && !this.pidFileExists()) {
      this.running = false;
      return;
    }
    const args = ["-D", this.dataDir, "-m", mode, "-w", "-t", String(START_TIMEOUT_S), "stop"];
    const inv = asPostgres(join(this.binDir, "pg_ctl"), args);
    const res = await runCommand(inv.cmd, inv.args, {
      env: serverEnv(), cwd: this.baseDir, timeoutMs: (START_TIMEOUT_S + 30) * 1000,
    });
    // pg_ctl fails with "Is server running?" if it already stopped (recovery shutdown, crash).
    if (res.code !== 0 && this.postmasterAlive()) {
      throw new Error(`stopping ${this.name} failed:\n${describeFailure("pg_ctl", args, res)}\n${this.logTail()}`);
    }
    this.running = false;
  }

  async restart(): Promise<void> {
    await this.stop("fast");
    await this.start();
  }

  /** Stops the server (if running) and removes its temp dirs; safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    // Servers whose data lives under our base dir (e.g. a restored copy) must go first.
    for (const other of [...live]) {
      if (other !== this && other.dataDir.startsWith(this.baseDir + sep)) await other.destroy();
    }
    try {
      // A data directory of the caller's (startExisting) may be used again: stopped cleanly.
      await this.stop(this.removeDataDir ? stopModeBeforeRemoval() : "fast");
    } catch {
      this.stopSync();
    }
    this.destroyed = true;
    live.delete(this);
    if (keepTemp()) {
      process.stderr.write(`[pgpitr harness] kept ${this.name} at ${this.baseDir} (PGPITR_TEST_KEEP)\n`);
      return;
    }
    this.removeFilesSync();
  }

  /** Synchronous immediate stop used by exit/signal handlers; falls back to SIGQUIT on the postmaster. */
  stopSync(): void {
    if (!this.running && !this.pidFileExists()) return;
    const inv = asPostgres(join(this.binDir, "pg_ctl"), ["-D", this.dataDir, "-m", "immediate", "-w", "-t", "30", "stop"]);
    const res = spawnSync(inv.cmd, inv.args, { env: serverEnv(), cwd: this.baseDir, stdio: "ignore", timeout: 40_000 });
    if (res.status !== 0) {
      const pid = this.postmasterPid();
      if (pid !== undefined) {
        try {
          process.kill(pid, "SIGQUIT");
        } catch {
          /* already gone */
        }
      }
    }
    this.running = false;
  }

  /** @internal removes base dir, extra socket dirs and (if owned) the data dir. */
  removeFilesSync(): void {
    rmSync(this.baseDir, { recursive: true, force: true });
    for (const d of this.extraDirs) rmSync(d, { recursive: true, force: true });
    if (this.removeDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  private pidFileExists(): boolean {
    return existsSync(join(this.dataDir, "postmaster.pid"));
  }

  private postmasterAlive(): boolean {
    const pid = this.postmasterPid();
    if (pid === undefined) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  }

  /** PID of the postmaster from postmaster.pid, if present. */
  postmasterPid(): number | undefined {
    try {
      const first = readFileSync(join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0];
      const pid = Number(first);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** A connected pg.Client (caller must end() it). */
  async connect(opts: SqlOptions = {}): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.host, port: this._port, user: "postgres", database: opts.database ?? "postgres",
    });
    // A server that stops meanwhile (a recovery stopping at a gap) fails the query or end(): not
    // once more as an 'error' event nobody listens to, which failed whichever test ran then.
    client.on("error", () => {});
    await client.connect();
    return client;
  }

  /** Runs one query (or a multi-statement script without params) and returns the last result's rows. */
  async sql<R extends QueryResultRow = QueryResultRow>(
    query: string, params?: unknown[], opts: SqlOptions = {},
  ): Promise<R[]> {
    const client = await this.connect(opts).catch((err: unknown) => {
      const state = this.running ? "running" : "not running";
      throw new Error(`[${this.name}] cannot connect (${state}): ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    });
    try {
      const result: unknown = await client.query(query, params);
      const last = Array.isArray(result) ? result[result.length - 1] : result;
      return ((last as { rows?: R[] } | undefined)?.rows ?? []) as R[];
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`[${this.name}] ${msg}\n  in query: ${query.slice(0, 500)}`, { cause: err });
    } finally {
      await client.end();
    }
  }

  /** libpq environment for client tools (merge into process.env yourself). */
  connectionEnv(): NodeJS.ProcessEnv {
    return { PGHOST: this.host, PGPORT: String(this._port), PGUSER: "postgres", PGDATABASE: "postgres" };
  }

  /** TCP connection string (for tools that need host:port, e.g. replication connections). */
  connectionString(database = "postgres"): string {
    return `postgresql://postgres@127.0.0.1:${this._port}/${encodeURIComponent(database)}`;
  }

  /** A new, empty directory inside baseDir owned by the server user (backups, tablespaces, restores). */
  tempDir(name: string): string {
    if (name.includes("/") || name === "" || name === "." || name === "..") throw new Error(`bad temp dir name: ${name}`);
    for (let i = 1; ; i++) {
      const dir = join(this.baseDir, i === 1 ? name : `${name}-${i}`);
      try {
        mkdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw err;
      }
      giveToServer(dir, 0o700);
      return dir;
    }
  }

  /** Full server log text ("" if none yet). */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8") : "";
  }

  logTail(lines = LOG_TAIL_LINES): string {
    return this.log().trimEnd().split("\n").slice(-lines).join("\n");
  }

  get logPath(): string {
    return this.logFile;
  }
}
