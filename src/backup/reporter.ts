// How the engine tells the outside world what it is doing. The CLI renders
// this as a progress line, JSON lines or verbose messages; tests collect it.
// Phases are those of pg_stat_progress_basebackup (PostgreSQL 13+).

export const BACKUP_PHASES = [
  'initializing',
  'waiting for checkpoint to finish',
  'estimating backup size',
  'streaming database files',
  'waiting for wal archiving to finish',
  'transferring wal files',
] as const;

export type BackupPhase = (typeof BACKUP_PHASES)[number] | 'syncing files' | 'complete';

export interface ProgressSnapshot {
  phase: BackupPhase;
  bytesDone: number;
  bytesTotal: number | null; // null with --no-estimate-size
  tablespacesDone: number;
  tablespacesTotal: number;
  currentFile?: string | undefined;
}

export interface BackupReporter {
  progress(snapshot: ProgressSnapshot): void;
  /** A step, shown with -v. */
  info(message: string): void;
  warn(message: string): void;
  /** A notice from the server, already in libpq's words ("WARNING:  ..."): printed as it is. */
  serverNotice(text: string): void;
}
