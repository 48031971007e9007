// A backup taken from a standby is corrupt if the standby is promoted before it
// ends. The server's BASE_BACKUP checks for that before each directory it sends
// (sendDir: better to stop early than to copy on and fail at the end); our
// readers cannot, so the session holding the backup asks pg_is_in_recovery()
// while the files are copied. Once the standby is no longer in recovery,
// pg_backup_stop is called at once: it fails with PostgreSQL's own message ("the
// standby was promoted during online backup"), which ends the backup.

import type { SqlClient } from '../../protocol/sql-client.js';
import { PgpitrError } from '../../common/errors.js';
import { stopLowLevelBackup } from './low-level-api.js';

const INTERVAL_MS = 500;

export interface PromotionWatch {
  /** Stops asking (waits for a question asked); the failure, if the standby was promoted. */
  stop(): Promise<Error | null>;
}

/** Watches a backup started in recovery; `onPromoted` gets the error that must end the backup. */
export function watchPromotion(sql: SqlClient, serverVersionNum: number, onPromoted: (e: Error) => void): PromotionWatch {
  let failure: Error | null = null;
  let pending: Promise<void> = Promise.resolve();
  let stopped = false;
  const check = async () => {
    const r = await sql.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
    if (stopped || r.rows[0]?.r !== false) return;
    stopped = true;
    clearInterval(timer);
    try {
      await stopLowLevelBackup(sql, serverVersionNum, false);
      failure = new PgpitrError('ERR_SERVER', 'the standby was promoted during the backup', { hint: 'the backup is not usable; take another one' });
    } catch (e) {
      failure = e as Error;
    }
    onPromoted(failure);
  };
  const timer = setInterval(() => {
    // One question at a time; a failed one (the session lost) is the session's watcher's to report.
    pending = pending.then(check).catch(() => {});
  }, INTERVAL_MS);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await pending;
      return failure;
    },
  };
}
