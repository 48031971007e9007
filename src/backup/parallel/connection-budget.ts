// -j N with the sql read method needs N more connections to the server (the
// session holding the backup is open already): refused before the backup starts
// when the server would not take them, rather than failing halfway through.

import type { SqlClient } from '../../protocol/sql-client.js';
import { PgpitrError } from '../../common/errors.js';

export async function checkConnectionBudget(sql: SqlClient, serverVersionNum: number, jobs: number): Promise<void> {
  // Client backends count against max_connections (walsenders and background workers have their own slots);
  // the reserved slots are not for us unless we may use them (superuser; pg_use_reserved_connections, 16+).
  const reservedForRoles = serverVersionNum >= 160000
    ? `CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(current_user, 'pg_use_reserved_connections', 'MEMBER') THEN 0 ELSE current_setting('reserved_connections')::int END`
    : '0';
  const r = await sql.query<{ max: number; reserved: number; used: number }>(
    `SELECT current_setting('max_connections')::int AS max,
            CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN 0 ELSE current_setting('superuser_reserved_connections')::int END + ${reservedForRoles} AS reserved,
            (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used`,
  );
  const row = r.rows[0]!;
  const free = row.max - row.reserved - row.used;
  if (jobs > free) {
    throw new PgpitrError('ERR_UNSUPPORTED', `-j ${jobs} needs ${jobs} more connections to the server besides the one holding the backup, and it can take ${Math.max(0, free)} now (max_connections ${row.max}, ${row.reserved} reserved, ${row.used} in use)`, {
      hint: `use -j ${Math.max(1, free)} or less, or raise max_connections on the server`,
    });
  }
}
