// Whether this role may read the server's files through SQL for a parallel
// backup: superuser, or a member of pg_read_server_files with EXECUTE on the
// file functions and the backup functions. Asked before anything is written;
// what is missing is named with the GRANT that gives it.

import type { SqlClient } from '../../protocol/sql-client.js';

const FILE_FUNCTIONS = ['pg_read_binary_file(text,bigint,bigint,boolean)', 'pg_ls_dir(text,boolean,boolean)', 'pg_stat_file(text,boolean)'];

function backupFunctions(serverVersionNum: number): string[] {
  return serverVersionNum >= 150000 ? ['pg_backup_start(text,boolean)', 'pg_backup_stop(boolean)'] : ['pg_start_backup(text,boolean,boolean)', 'pg_stop_backup(boolean,boolean)'];
}

/** null: permitted; else what is missing, with the GRANT statements that give it. */
export async function sqlReadRefusal(sql: SqlClient, serverVersionNum: number): Promise<{ missing: string; grants: string } | null> {
  const functions = [...FILE_FUNCTIONS, ...backupFunctions(serverVersionNum)];
  const r = await sql.query<{ role: string; superuser: boolean; member: boolean; allowed: boolean[] }>(
    `SELECT current_user AS role, r.rolsuper AS superuser, pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') AS member,
            ARRAY(SELECT has_function_privilege(f::regprocedure, 'EXECUTE') FROM unnest($1::text[]) WITH ORDINALITY AS u(f, n) ORDER BY n) AS allowed
       FROM pg_roles r WHERE r.rolname = current_user`,
    [functions],
  );
  const row = r.rows[0];
  if (!row) return { missing: 'the current role is not in pg_roles', grants: '' };
  if (row.superuser) return null;
  const role = quoteIdent(row.role);
  const missing: string[] = [];
  const grants: string[] = [];
  if (!row.member) {
    missing.push('membership in pg_read_server_files');
    grants.push(`GRANT pg_read_server_files TO ${role};`);
  }
  functions.forEach((f, i) => {
    if (row.allowed[i]) return;
    missing.push(`EXECUTE on ${f}`);
    grants.push(`GRANT EXECUTE ON FUNCTION ${f} TO ${role};`);
  });
  return missing.length === 0 ? null : { missing: `role "${row.role}" lacks ${missing.join(', ')}`, grants: grants.join(' ') };
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}
