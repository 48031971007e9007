// `pgpitr stanza-create`: records a cluster in the repository (system
// identifier, major version, WAL segment size), creating the repository if
// needed. Run again on the same cluster it changes nothing.

import { mkdirSync } from 'node:fs';
import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { storageError } from '../../common/errors.js';
import { openSqlClient } from '../../protocol/sql-client.js';
import { createStanza } from '../../repo/stanza.js';
import { RepoLock } from '../../repo/lock.js';
import { parseSizeSetting } from '../../postgres/settings.js';
import { majorOf } from '../../postgres/versions.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';

const HELP = `pgpitr stanza-create records a cluster in a repository.

Usage:
  pgpitr stanza-create --repo PATH --stanza NAME [connection options]

${REPO_OPTIONS_HELP}`;

export async function stanzaCreateCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('stanza-create', argv);
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const client = await openSqlClient(o.connection, 'pgpitr stanza-create');
  let row: { sysid: string; version: string; seg: string };
  try {
    const r = await client.query<{ sysid: string; version: string; seg: string }>(
      "select system_identifier::text as sysid, current_setting('server_version_num') as version, current_setting('wal_segment_size') as seg from pg_control_system()",
    );
    row = r.rows[0]!;
  } finally {
    await client.end().catch(() => {});
  }
  try {
    mkdirSync(o.repo, { recursive: true, mode: 0o750 });
  } catch (e) {
    throw storageError('create repository directory', o.repo, e);
  }
  const lock = RepoLock.acquire(o.repo, 'repository', 'stanza-create');
  try {
    const { info, created } = createStanza(o.repo, {
      stanza: o.stanza,
      system_identifier: row.sysid,
      pg_major: majorOf(Number(row.version)),
      wal_segment_size: parseSizeSetting(row.seg),
    });
    if (o.output === 'json') process.stdout.write(JSON.stringify({ created, ...info }, null, 2) + '\n');
    else printLine(`stanza "${info.stanza}" ${created ? 'created' : 'already exists'}: system ${info.system_identifier}, PostgreSQL ${info.pg_major}, repository ${o.repo}`);
  } finally {
    lock.release();
  }
  return ExitCode.Ok;
}
