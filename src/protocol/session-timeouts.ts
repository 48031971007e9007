// The statement that lifts a role's or database's timeouts for the session pgpitr runs it on: a
// backup's SQL session waits in pg_backup_start (a spread checkpoint) and pg_backup_stop (the
// archiver), then sits idle while the files are copied, and its readers wait on the writers.
// statement_timeout, lock_timeout, idle_in_transaction_session_timeout, or (14+)
// idle_session_timeout set on the role would end the backup half way. Settings the server does
// not have are skipped (pg_settings lists what it has).

export const LIFT_TIMEOUTS_SQL =
  "SELECT set_config(name, '0', false) FROM pg_settings WHERE name IN ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'idle_session_timeout')";
