// Optional: watches pg_stat_progress_basebackup for our WAL sender over an
// ordinary SQL connection, to show the phases the client cannot see
// (estimating backup size, transferring wal files). If the role cannot connect
// to a database, progress falls back to what the stream itself shows.

import type { ConnectionSettings } from '../protocol/conninfo.js';
import { openSqlClient } from '../protocol/sql-client.js';
import type { SqlClient } from '../protocol/sql-client.js';
import type { ProgressTracker } from './progress-tracker.js';
import type { BackupPhase } from './reporter.js';

export class ServerProgressWatcher {
  private client: SqlClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly tracker: ProgressTracker,
  ) {}

  async start(walSenderPid: number, intervalMs = 300): Promise<void> {
    let client: SqlClient;
    try {
      client = await openSqlClient(this.settings, 'pgpitr progress');
    } catch {
      return; // no SQL access: stream-derived phases only
    }
    this.client = client;
    const poll = async () => {
      if (this.busy || !this.client) return;
      this.busy = true;
      try {
        const r = await this.client.query<{ phase: BackupPhase }>('SELECT phase FROM pg_stat_progress_basebackup WHERE pid = $1', [walSenderPid]);
        const phase = r.rows[0]?.phase;
        if (phase) this.tracker.phase(phase);
      } catch {
        /* ignore: progress is best effort */
      } finally {
        this.busy = false;
      }
    };
    this.timer = setInterval(() => void poll(), intervalMs);
    this.timer.unref();
    await poll();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
