// `pgpitr stanza-delete`: removes a stanza with its backups and WAL archive
// (commands/stanza-delete.ts); without --force, says what it would remove.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import type { RepoOptions } from '../repo-options.js';
import { openEachRepository } from '../../repo/open-repository.js';
import { onEachRepository, throwFirstFailure } from '../each-repository.js';
import { stanzaDelete } from '../../commands/stanza-delete.js';
import type { StanzaContents } from '../../commands/stanza-delete.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';
import { usageError } from '../../common/errors.js';
import { ADVISORY_LOCKS_WARNING } from '../../repo/conditional-create.js';

const HELP = `pgpitr stanza-delete removes a stanza from a repository: every backup, the WAL archive, the stanza.

Usage:
  pgpitr stanza-delete --repo PATH --stanza NAME --force

Without --force it says what it would remove and exits 2, removing nothing. First point
archive_command elsewhere (or turn archiving off) and stop receive-wal into it: archive-push
into a deleted stanza fails, and PostgreSQL keeps the WAL in pg_wal until it succeeds; a running
asynchronous pusher or receive-wal sees the stanza gone within a second and stores nothing more
(stanza-delete waits two seconds for that; files stored after are reported, exit 5). A backup or expire running in the
stanza makes it wait for nothing: it is refused (exit 5); so is a restore reading a backup, and a
recovery restored from the stanza that may not have ended (a standby restored from it in the last
day, as long as its restore's lease lasts; a restored directory not started yet), whose
restore_command would fail: --abandon-recoveries (with --force) deletes anyway. Interrupted, it is finished by
running it again. The local spool directories of asynchronous archiving are not touched.
Typical use: the stanza of a cluster retired, or of the cluster before a major-version
upgrade once its backups are no longer wanted (see the README).

      --force            remove it
      --abandon-recoveries   remove it although a recovery restored from it may still need its WAL
${REPO_OPTIONS_HELP}
With several repositories configured, --force needs --repo N: a stanza is deleted from one
repository at a time (as pgBackRest), so that a copy kept elsewhere is not lost with it.

Exit status: 0 removed, 2 without --force (nothing removed), 5 locked, 6 no such stanza.
`;

export async function stanzaDeleteCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('stanza-delete', argv, { extra: { force: { type: 'boolean' }, 'abandon-recoveries': { type: 'boolean' } } });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const force = o.extra['force'] === true;
  const abandon = o.extra['abandon-recoveries'] === true;
  if (abandon && !force) throw usageError('--abandon-recoveries is given without --force', 'it only lets --force delete a stanza a recovery may still need; give both, or neither to see what would be removed');
  if (force) refuseDeleteFromSeveral(o, argv);
  const outcomes = await onEachRepository(await openEachRepository(o.repos, o.repoSelected), ({ repo }) => stanzaDelete(repo, o.stanza, force, abandon));
  if (o.output === 'json') {
    process.stdout.write(JSON.stringify({ stanza: o.stanza, repositories: outcomes.map((r) => ({ repo: r.index, location: r.location, ...(r.error ? { error: r.error.message } : { deleted: r.result!.deleted, contents: r.result!.contents, advisory_locks: r.result!.advisoryLocks, recoveries: r.result!.recoveries }) })) }, null, 2) + '\n');
  } else {
    for (const r of outcomes) {
      if (!r.result) continue;
      const where = `repository ${outcomes.length > 1 ? `${r.index} ` : ''}${r.location}`;
      printLine(`${r.result.deleted ? 'deleted' : 'would delete'} stanza "${o.stanza}" from ${where}: ${describe(r.result.contents)}`);
      for (const h of r.result.recoveries) printLine(`warning: ${h}: a recovery restored from this stanza may not have ended; its restore_command ${r.result.deleted ? 'now fails' : 'would fail'} (exit 200, recovery stops) for WAL it still needs${r.result.deleted ? '' : ' (--force alone is refused while it may: --abandon-recoveries as well deletes anyway)'}`);
    }
  }
  for (const r of outcomes) {
    if (r.result?.advisoryLocks) printLine(`warning: repository ${r.index} (${r.location}): ${ADVISORY_LOCKS_WARNING}`);
  }
  throwFirstFailure(outcomes);
  if (!force) throw usageError(`stanza "${o.stanza}" was not deleted: give --force to delete it`, 'nothing was removed; check that no cluster archives into it any more (archive_command)');
  return ExitCode.Ok;
}

function describe(c: StanzaContents): string {
  const what = !c.recorded ? 'what an interrupted stanza-delete left' : c.system_identifier !== null ? `system ${c.system_identifier}, PostgreSQL ${c.pg_major}` : 'its record damaged';
  const backups = c.backups.length === 0 ? 'no backup' : `${c.backups.length} backup(s) (${c.backups.join(', ')})`;
  const wal = `${c.wal_files} archived WAL file(s), ${Math.round(c.wal_bytes / 1048576)} MiB${c.last_archived ? `, the last archived ${c.last_archived}` : ''}`;
  return `${what}; ${backups}; ${wal}`;
}

/**
 * With several repositories configured, --force deletes from one at a time, named by --repo N (as
 * pgBackRest's stanza-delete): the offsite copy of a stanza must not go with the local one because
 * --repo was left out. --repo PATH (or PGPITR_REPO) names repository 1, which someone pointing it at
 * one directory (a test copy) does not expect to mean "and every other one": said so.
 */
export function refuseDeleteFromSeveral(o: Pick<RepoOptions, 'repos' | 'repoSelected'>, argv: string[], env: NodeJS.ProcessEnv = process.env): void {
  if (o.repoSelected !== undefined || o.repos.length < 2) return;
  const i = argv.findIndex((a) => a === '--repo' || a.startsWith('--repo='));
  const value = i < 0 ? undefined : argv[i] === '--repo' ? argv[i + 1] : argv[i]!.slice('--repo='.length);
  const all = o.repos.map((r) => `repo${r.index}`).join(', ');
  // PGPITR_REPO names repository 1 as --repo PATH does.
  const given = value !== undefined && !/^\d+$/.test(value) ? `--repo ${value}` : env.PGPITR_REPO !== undefined ? `PGPITR_REPO=${env.PGPITR_REPO}` : undefined;
  const what = given !== undefined
    ? `${given} names repository 1, but ${o.repos.filter((r) => r.index !== 1).map((r) => `repo${r.index}`).join(', ')} ${o.repos.length > 2 ? 'are' : 'is'} configured too`
    : `${o.repos.length} repositories are configured (${all})`;
  throw usageError(`${what}: stanza-delete --force deletes a stanza from one repository at a time`, `give --repo N (one of ${o.repos.map((r) => r.index).join(', ')}) to delete it from that repository; run it again with another N for each repository it should go from. Without --force it lists what each holds`);
}
