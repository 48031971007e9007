// The statement that lifts a role's or database's timeouts for the session pgpitr runs it on: a
// backup's SQL session waits in pg_backup_start (a spread checkpoint) and pg_backup_stop (the
// archiver), then sits idle while the files are copied, and its readers wait on the writers.
// statement_timeout, lock_timeout, idle_in_transaction_session_timeout, (14+)
// idle_session_timeout or (17+) transaction_timeout set on the role would end the backup half
// way. Settings the server does not have are skipped (current_setting(name, true) is null for
// them; pg_settings may be closed to the role).

export const LIFT_TIMEOUTS_SQL =
  "SELECT set_config(n, '0', false) FROM unnest(ARRAY['statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'idle_session_timeout', 'transaction_timeout']) AS n WHERE current_setting(n, true) IS NOT NULL";
