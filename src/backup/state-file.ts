// The backup state file: written into the target when a backup starts
// ("running", with pid/host/label/start time), rewritten atomically at the end
// as "complete" (after every byte is synced) or "failed". `pgpitr status` reads
// it; a "running" file whose process is gone means the backup was interrupted.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../storage/durable.js';
import { PgpitrError } from '../common/errors.js';
import { PGPITR_VERSION } from '../common/version.js';

export const STATE_FILE_NAME = 'pgpitr_backup.state';

export type BackupStatus = 'running' | 'complete' | 'failed';

export interface BackupState {
  format: 'pgpitr-backup-state';
  format_version: 1;
  status: BackupStatus;
  pid: number;
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
  timeline?: number;
  bytes?: number;
  duration_seconds?: number;
  error?: string;
}

export class StateFile {
  readonly path: string;
  private state: BackupState;

  constructor(dir: string, label: string, private readonly sync: boolean) {
    this.path = join(dir, STATE_FILE_NAME);
    this.state = {
      format: 'pgpitr-backup-state',
      format_version: 1,
      status: 'running',
      pid: process.pid,
      host: hostname(),
      label,
      pgpitr_version: PGPITR_VERSION,
      started_at: new Date().toISOString(),
    };
  }

  update(fields: Partial<BackupState>): void {
    this.state = { ...this.state, ...fields };
  }

  /**
   * Replaces the file atomically. `durable: false` skips the fsyncs, for a progress
   * update (the start LSN) written on the way to the data: the file is the same
   * either way after a crash, `running` with or without it, and the final
   * write is always durable.
   */
  write(durable = true): void {
    writeFileAtomicSync(this.path, JSON.stringify(this.state, null, 2) + '\n', this.sync && durable);
  }

  finish(status: 'complete' | 'failed', fields: Partial<BackupState> = {}): void {
    const started = Date.parse(this.state.started_at);
    this.update({
      ...fields,
      status,
      finished_at: new Date().toISOString(),
      duration_seconds: Math.round((Date.now() - started) / 10) / 100,
    });
    this.write();
  }
}

export function readStateFile(dir: string): BackupState {
  const path = join(dir, STATE_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PgpitrError(code === 'ENOENT' ? 'ERR_NOT_FOUND' : 'ERR_STORAGE', `no pgpitr backup state in "${dir}": ${(e as Error).message}`, {
      hint: `a pgpitr backup directory holds ${STATE_FILE_NAME}; check the path`,
    });
  }
  try {
    const parsed = JSON.parse(text) as BackupState;
    if (parsed.format !== 'pgpitr-backup-state') throw new Error('not a pgpitr state file');
    return parsed;
  } catch (e) {
    throw new PgpitrError('ERR_STORAGE', `state file "${path}" is unreadable: ${(e as Error).message}`, {
      hint: 'the file was damaged; treat the backup as failed',
    });
  }
}

export type AssessedStatus = 'complete' | 'running' | 'failed' | 'interrupted';

/** A "running" state whose process no longer exists on this host was interrupted. */
export function assessState(state: BackupState): AssessedStatus {
  if (state.status !== 'running') return state.status;
  if (state.host !== hostname()) return 'running';
  try {
    process.kill(state.pid, 0);
    return 'running';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'running' : 'interrupted';
  }
}
