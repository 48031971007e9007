// The backup state file: written into the target when a backup starts
// ("running", with pid/host/label/start time and what identifies the process:
// its start time and the boot id), rewritten atomically at the end as
// "complete" (after every byte is synced) or "failed". `pgpitr status` reads it;
// a "running" file whose process is gone (or whose pid now belongs to another
// process) means the backup was interrupted.
//
// The file is padded to STATE_RESERVED_BYTES from the start, so that a final
// "failed" can always be written, even on a full disk: when the atomic replace
// fails, that record is written in place over the reserved bytes (no new block
// needed). Only "failed" is ever written in place: a torn write mixes "running"
// and "failed" (or does not parse), and never reads as "complete".

import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, statSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../storage/durable.js';
import { PgpitrError, storageError } from '../common/errors.js';
import { PGPITR_VERSION } from '../common/version.js';
import { currentBootId, currentPidNamespace, processIdentity, processStartTime } from '../common/process-identity.js';

export const STATE_FILE_NAME = 'pgpitr_backup.state';

/** The state file's size from the start: room for the final record (one file system block). */
export const STATE_RESERVED_BYTES = 4096;

/** At most this many checksum failure messages are kept in the state file. */
const MAX_CHECKSUM_FAILURES = 20;

export type BackupStatus = 'running' | 'complete' | 'failed';

export interface BackupState {
  format: 'pgpitr-backup-state';
  format_version: 1;
  status: BackupStatus;
  pid: number;
  /** Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22); absent in older files or off Linux. */
  pid_start_time?: string;
  /** /proc/sys/kernel/random/boot_id of the boot that ran `pid`. */
  boot_id?: string;
  /** The pid namespace `pid` is in ("pid:[...]"): a container sharing the host name has another, where `pid` means nothing. */
  pid_ns?: string;
  host: string;
  label: string;
  pgpitr_version: string;
  started_at: string;
  finished_at?: string;
  server_version?: number;
  system_identifier?: string;
  backup_format?: 'plain' | 'tar';
  wal_method?: string;
  start_lsn?: string;
  stop_lsn?: string;
  /** The timeline the backup starts on. */
  timeline?: number;
  /** The timeline it ends on, when another (a standby that followed its upstream's promotion). */
  stop_timeline?: number;
  bytes?: number;
  duration_seconds?: number;
  error?: string;
  /** The server's page checksum failure warnings (files and blocks), the first ones. */
  checksum_failures?: string[];
  /**
   * The directories besides the target this backup writes into (tablespace directories, --waldir),
   * absolute, each created or found empty by it: --resume takes only these as they are.
   */
  output_dirs?: string[];
  /**
   * While it runs, the writer touches the file (its mtime) this often: where its process cannot be
   * looked at (another host, another container), a file not touched for many beats was left by a
   * process that is gone. Absent in files of older pgpitr.
   */
  heartbeat_s?: number;
}

/** How often a running backup touches its state file. */
const HEARTBEAT_S = 15;

export class StateFile {
  readonly path: string;
  private state: BackupState;
  private mode = 0o600;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(dir: string, label: string, private readonly sync: boolean) {
    this.path = join(dir, STATE_FILE_NAME);
    const identity = processIdentity(process.pid);
    const namespace = currentPidNamespace();
    this.state = {
      format: 'pgpitr-backup-state',
      format_version: 1,
      status: 'running',
      pid: process.pid,
      ...(identity ? { pid_start_time: identity.startTime, boot_id: identity.bootId } : {}),
      ...(namespace !== null ? { pid_ns: namespace } : {}),
      host: hostname(),
      label,
      pgpitr_version: PGPITR_VERSION,
      started_at: new Date().toISOString(),
      heartbeat_s: HEARTBEAT_S,
    };
  }

  update(fields: Partial<BackupState>): void {
    this.state = { ...this.state, ...fields };
  }

  /** The mode of the file from the next write on (0640 when the source cluster allows group access). */
  setMode(mode: number): void {
    this.mode = mode;
  }

  /** A server warning about a page checksum: kept (the first ones) to say which files and blocks failed. */
  addChecksumFailure(message: string): void {
    const list = this.state.checksum_failures ?? [];
    if (list.length < MAX_CHECKSUM_FAILURES) this.state.checksum_failures = [...list, message];
  }

  /**
   * Replaces the file atomically, padded to the reserved size. `durable: false`
   * skips the fsyncs, for a progress update (the start LSN) written on the way
   * to the data: the file is the same either way after a crash, `running` with
   * or without it, and the final write is always durable.
   */
  write(durable = true): void {
    writeFileAtomicSync(this.path, padded(this.state, STATE_RESERVED_BYTES), this.sync && durable, this.mode);
    if (this.heartbeat === null && this.state.status === 'running') {
      this.heartbeat = setInterval(() => {
        try {
          const now = new Date();
          utimesSync(this.path, now, now);
        } catch {
          // The next beat tries again; missing beats only make another host's status call it interrupted sooner.
        }
      }, HEARTBEAT_S * 1000);
      this.heartbeat.unref();
    }
  }

  finish(status: 'complete' | 'failed', fields: Partial<BackupState> = {}): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    const started = Date.parse(this.state.started_at);
    this.update({
      ...fields,
      status,
      finished_at: new Date().toISOString(),
      duration_seconds: Math.round((Date.now() - started) / 10) / 100,
    });
    if (status === 'complete') {
      this.write();
      return;
    }
    try {
      this.write();
    } catch {
      // A full disk (or quota) has no room for a new file: use the reserved bytes.
      this.overwriteInPlace();
    }
  }

  /** Writes the state over the existing file's bytes, never growing it, then syncs. */
  private overwriteInPlace(): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r+');
    } catch (e) {
      throw storageError('open', this.path, e);
    }
    try {
      const capacity = Math.max(fstatSync(fd).size, 1);
      const buf = Buffer.from(fitted(this.state, capacity));
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, off);
      fsyncSync(fd);
    } catch (e) {
      throw storageError('write in place', this.path, e);
    } finally {
      closeSync(fd);
    }
  }
}

/** The state as JSON padded with spaces (ignored by JSON parsers) to `size` bytes and a newline. */
function padded(state: BackupState, size: number): string {
  const text = JSON.stringify(state, null, 2);
  const room = size - Buffer.byteLength(text) - 1;
  return text + ' '.repeat(Math.max(0, room)) + '\n';
}

/** `padded` to `size` bytes, shortening the longest texts when the record would not fit. */
function fitted(state: BackupState, size: number): string {
  let s: BackupState = { ...state };
  for (;;) {
    const text = padded(s, size);
    if (Buffer.byteLength(text) <= size) return text;
    if (s.checksum_failures?.length) s = { ...s, checksum_failures: s.checksum_failures.slice(0, -1) };
    else if (s.error && s.error.length > 200) s = { ...s, error: s.error.slice(0, 200) + '...' };
    else if (s.label.length > 64) s = { ...s, label: s.label.slice(0, 64) + '...' };
    else return text; // cannot be shorter: written whole, the file grows if it must
  }
}

export function readStateFile(dir: string): BackupState {
  const path = join(dir, STATE_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new PgpitrError('ERR_NOT_FOUND', `no pgpitr backup state in "${dir}": ${(e as Error).message}`, { hint: `a pgpitr backup directory holds ${STATE_FILE_NAME}; check the path` });
    }
    // There, but not readable by this user (EACCES): not "no state", which a monitor would read as a directory that is not a backup.
    throw new PgpitrError('ERR_STORAGE', `the pgpitr backup state "${path}" cannot be read: ${(e as Error).message}`, { hint: 'run status as a user that can read the backup directory (its owner, or root)' });
  }
  try {
    const parsed = JSON.parse(text) as BackupState;
    if (parsed.format !== 'pgpitr-backup-state') throw new Error('not a pgpitr state file');
    // Anything else (a newer format, a hand edit) must never read as complete (status exits 0 for it).
    if (!['running', 'complete', 'failed'].includes(parsed.status as string)) throw new Error(`unknown status ${JSON.stringify(parsed.status)}`);
    return parsed;
  } catch (e) {
    // (JSON.parse quotes what it met: control characters of a damaged file would break the line.)
    throw new PgpitrError('ERR_STORAGE', `state file "${path}" is unreadable: ${(e as Error).message.replace(/[\u0000-\u001f\u007f]+/g, ' ')}`, {
      hint: 'the file was damaged; treat the backup as failed',
    });
  }
}

export type AssessedStatus = 'complete' | 'running' | 'failed' | 'interrupted';

/** How long ago the state file in `dir` was written or touched (ms); null when that cannot be read. */
export function stateFileAge(dir: string, nowMs = Date.now()): number | null {
  try {
    return nowMs - statSync(join(dir, STATE_FILE_NAME)).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * Whether a running state's writer, which cannot be looked at from here, stopped touching the file:
 * eight beats missed, and at least two minutes (ten for another host, whose clock may differ), and
 * at least `atLeastMs` (--resume asks for more: RESUME_AFTER_SILENCE_MS).
 */
export function heartbeatStopped(state: Pick<BackupState, 'heartbeat_s'>, ageMs: number | null, why: 'another host' | 'another pid namespace', atLeastMs = 0): boolean {
  if (state.heartbeat_s === undefined || ageMs === null) return false;
  return ageMs > Math.max(8 * state.heartbeat_s * 1000, why === 'another host' ? 600_000 : 120_000, atLeastMs);
}

/**
 * Before --resume writes into a backup whose writer cannot be looked at from here: its state file
 * untouched this long. A process paused (docker pause, SIGSTOP, a frozen cgroup, a stalled NFS
 * client) touches nothing either, and would wake up beside the run that took its place.
 */
export const RESUME_AFTER_SILENCE_MS = 30 * 60_000;

/**
 * Why this process cannot tell whether the state's writer still runs: written on another host, or
 * in another pid namespace when recorded (a container sharing the host name has its own pids);
 * null when it can. A "running" state of such a writer is judged by its heartbeat (heartbeatStopped).
 */
export function unjudgeableBecause(state: Pick<BackupState, 'host' | 'pid_ns'>): 'another host' | 'another pid namespace' | null {
  if (state.host !== hostname()) return 'another host';
  const here = currentPidNamespace();
  return state.pid_ns === undefined || here === null || state.pid_ns === here ? null : 'another pid namespace';
}

/** Of this host, written in another boot: a process gone, whatever pid namespace it ran in. */
export function sameBootGone(state: Pick<BackupState, 'host' | 'boot_id'>): boolean {
  if (state.host !== hostname() || state.boot_id === undefined) return false;
  const boot = currentBootId();
  return boot !== null && boot !== state.boot_id;
}

/**
 * A "running" state was interrupted when its process no longer exists: written in an earlier boot
 * of this host; else, where its process can be looked at, the pid is gone or now names another
 * process (another start time; files without the identity fields are judged by the pid); where it
 * cannot (another host or pid namespace), its state file was not touched for many heartbeats
 * (heartbeatStopped, given `ageMs`).
 */
export function assessState(state: BackupState, ageMs: number | null = null): AssessedStatus {
  if (state.status !== 'running') return state.status;
  const why = unjudgeableBecause(state);
  if (sameBootGone(state)) return 'interrupted';
  if (why !== null) return heartbeatStopped(state, ageMs, why) ? 'interrupted' : 'running';
  try {
    process.kill(state.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return 'interrupted';
  }
  if (state.pid_start_time !== undefined) {
    const start = processStartTime(state.pid);
    if (start !== null && start !== state.pid_start_time) return 'interrupted';
  }
  return 'running';
}
