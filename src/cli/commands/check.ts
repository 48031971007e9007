// `pgpitr check`: is this server archiving into this stanza? Checks the
// repository and stanza, the server's system identifier, wal_level,
// archive_mode and archive_command, then switches WAL and waits until that
// segment is in the repository, and that no WAL is missing from the archive
// (gaps, explained by the records of WAL dropped by the asynchronous queue
// limit), and that a restore could reach that segment (with --backup-age-max, from a
// recent enough backup). Each problem is reported with what to change. It also counts and
// removes the stale temporary files of interrupted pushes and commands (repo/archive-temp.ts, repo/stale-temps.ts).
// The checks are commands/check.ts; this file parses and prints.

import { parseRepoOptions, REPO_OPTIONS_HELP, CONNECTION_OPTIONS_HELP } from '../repo-options.js';
import { openEachRepository } from '../../repo/open-repository.js';
import { checkStanza } from '../../commands/check.js';
import { ExitCode } from '../exit-codes.js';
import { parseRetentionWindow } from '../../repo/retention.js';
import { usageError } from '../../common/errors.js';

const HELP = `pgpitr check verifies that a server archives its WAL into a stanza.

Usage:
  pgpitr check --repo PATH --stanza NAME [connection options] [--archive-timeout SECONDS]
               [--backup-age-max D] [--no-switch]

Checks the repository and stanza, the server's settings for archiving into it, switches WAL
and waits for that segment to be archived, then checks that no WAL is missing and that a
restore could reach that segment: a backup that can be restored, and unbroken WAL from it to
now. A stanza with no backup yet passes with a warning.

      --archive-timeout=SECONDS   how long to wait for the segment (default 60)
      --backup-age-max=D   also fail when the newest restorable backup ended more than D ago,
                           or there is none (D: 30m, 12h, 26h, 7d)
      --no-switch          do not switch WAL: judge by the last file the server archived
                           (pg_stat_archiver; its statistics reset, as by a crash restart, the
                           newest .done file of archive_status), which must be in the repository,
                           with archiving not failing since and no file waiting longer than
                           --archive-timeout. For monitoring run every few minutes: each run
                           without it makes a new WAL segment (16 MB archived, mostly empty).
                           A stanza fed by a WAL receiver (archive_mode off): each repository
                           must hold WAL up to two segments before the one the server writes

${REPO_OPTIONS_HELP}${CONNECTION_OPTIONS_HELP}
Exit status: 0 all good, 7 a check failed (each problem is printed; a repository
that cannot be used, an unknown stanza and a server that cannot be reached are
such problems, so that everything else is still checked and said: with the
server out of reach, continuity, a restore's reach and the backup's age up to
each repository's newest segment), 2 invalid
options, 9 the connection was lost midway.
`;

export async function checkCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('check', argv, { extra: { 'backup-age-max': { type: 'string' }, 'no-switch': { type: 'boolean' } } });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const ageText = o.extra['backup-age-max'] as string | undefined;
  let backupAgeMaxMs: number | undefined;
  try {
    backupAgeMaxMs = ageText === undefined ? undefined : parseRetentionWindow(ageText, '--backup-age-max');
  } catch (e) {
    throw usageError((e as Error).message);
  }
  const repos = await openEachRepository(o.repos, o.repoSelected);
  const findings = await checkStanza({ repos, repoArgs: o.reachArgs, stanza: o.stanza, connection: o.connection, archiveTimeoutMs: o.archiveTimeoutMs, backupAgeMaxMs, noSwitch: o.extra['no-switch'] === true });
  // With one repository the output is as it always was; with several, each finding names its own.
  const several = repos.length > 1;
  const ok = findings.every((f) => f.ok);
  if (o.output === 'json') process.stdout.write(JSON.stringify({ format_version: 1, ok, checks: several ? findings : findings.map(({ repo: _, ...f }) => f) }, null, 2) + '\n');
  else {
    for (const f of findings) {
      process.stdout.write(`${f.ok ? 'ok  ' : 'FAIL'} ${several && f.repo !== undefined ? `repo${f.repo} ` : ''}${f.check}: ${f.message}\n`);
      if (f.hint) process.stdout.write(`     hint: ${f.hint}\n`);
    }
  }
  return ok ? ExitCode.Ok : ExitCode.CheckFailed;
}
