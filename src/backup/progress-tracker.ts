// Keeps the figures a user watches during a backup (the columns of
// pg_stat_progress_basebackup) and forwards them to the reporter. Phases only
// move forward; the server's own view (server-progress.ts) may advance them.

import type { BackupPhase, BackupReporter, ProgressSnapshot } from './reporter.js';
import { BACKUP_PHASES } from './reporter.js';

const ORDER: BackupPhase[] = [...BACKUP_PHASES, 'syncing files', 'complete'];

export class ProgressTracker {
  private snap: ProgressSnapshot = {
    phase: 'initializing',
    bytesDone: 0,
    bytesTotal: null,
    tablespacesDone: 0,
    tablespacesTotal: 0,
  };
  private clientBytes = 0;

  constructor(private readonly reporter: BackupReporter) {}

  get snapshot(): ProgressSnapshot {
    return this.snap;
  }

  phase(p: BackupPhase): void {
    if (ORDER.indexOf(p) <= ORDER.indexOf(this.snap.phase)) return;
    this.snap = { ...this.snap, phase: p };
    this.emit();
  }

  totals(bytesTotal: number | null, tablespaces: number): void {
    this.snap = { ...this.snap, bytesTotal, tablespacesTotal: tablespaces };
    this.emit();
  }

  /**
   * Uncompressed archive bytes received (client-side count). The server's count, when it sends
   * one, may be ahead between its messages (at most one a second): the larger of the two is shown,
   * and bytes received after the server's last message still count (a backup whose last message
   * came at a fifth of it ended showing 21%).
   */
  addBytes(n: number): void {
    this.clientBytes += n;
    if (this.clientBytes > this.snap.bytesDone) this.snap.bytesDone = this.clientBytes;
    if (this.snap.bytesTotal !== null && this.snap.bytesDone > this.snap.bytesTotal) this.snap.bytesTotal = this.snap.bytesDone;
    this.emit();
  }

  /** Server-side count (15+ sends it with -P, at most once a second); the only one when the server compresses. */
  serverProgress(bytes: number): void {
    if (bytes > this.snap.bytesDone) this.snap.bytesDone = bytes;
    this.emit();
  }

  tablespaceDone(): void {
    this.snap.tablespacesDone++;
    this.emit();
  }

  file(name: string): void {
    this.snap.currentFile = name;
  }

  private emit(): void {
    this.reporter.progress(this.snap);
  }
}
