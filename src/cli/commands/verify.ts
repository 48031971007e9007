// `pgpitr verify [--set ID]`: every stored file of every backup, every
// archived WAL file, each backup's WAL range and the archive's gaps past the oldest
// backup (commands/verify.ts); exit 7 when anything is wrong, each problem on a line
// naming its object once (a message that names it is not prefixed with it again).

import { PgpitrError } from '../../common/errors.js';
import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { readStanzaWithArchive } from '../../repo/stanza.js';
import { NO_SUCH_BACKUP, verifyStanza, type VerifyReport } from '../../commands/verify.js';
import { openEachRepository } from '../../repo/open-repository.js';
import { onEachRepository, throwFirstFailure } from '../each-repository.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';

const HELP = `pgpitr verify re-reads a stanza's backups and archived WAL against their checksums.

Usage:
  pgpitr verify --repo PATH --stanza NAME [--set ID] [--output json]

      --set=ID   verify one backup (and its WAL range) only; the archive's gaps are not looked for
      --process-max=N  files read and checked at once (default 2)
A gap in the archive (WAL missing after the oldest backup's start: point-in-time recovery
stops there) is one problem, named by its first missing segment, with how many are missing
and where archived WAL resumes; --output json lists them as archive_gaps too.
Exit status: 0 all good, 7 a problem was found (each is printed with its path),
2 invalid options or a wrong passphrase, 5 the repository cannot be read (no
permission, its directory gone), 6 no such stanza or --set backup, 3 object
storage refused the credentials, 9 it kept failing through every retry, 130
stopped by a signal: a store or file out of reach is not reported as damage.
${REPO_OPTIONS_HELP}`;

export async function verifyCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('verify', argv, { extra: { set: { type: 'string' } } });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const repos = await openEachRepository(o.repos, o.repoSelected);
  const several = repos.length > 1;
  const outcomes = await onEachRepository(repos, async ({ repo }) => {
    // A missing archive directory is damage, not an empty archive.
    const stanza = await readStanzaWithArchive(repo, o.stanza);
    return verifyStanza(repo, o.stanza, stanza.wal_segment_size, { set: o.extra['set'] as string | undefined, processMax: o.processMax });
  });
  // A backup is in one repository: with --set, "no such backup" in one of several is no problem when another holds it.
  const set = o.extra['set'] as string | undefined;
  if (set !== undefined && several && outcomes.some((r) => r.result?.backups.some((b) => b.id === set))) {
    for (const r of outcomes) if (r.result) r.result.problems = r.result.problems.filter((x) => !(x.scope === set && x.problem === NO_SUCH_BACKUP));
  }
  const problems = outcomes.reduce((n, r) => n + (r.result?.problems.length ?? 0), 0);
  // --set naming no complete backup (and nothing else wrong): the named object does not exist (exit 6, not a problem found).
  const onlyMissingSet = set !== undefined && problems > 0 && outcomes.every((r) => r.result?.problems.every((x) => x.scope === set && x.problem === NO_SUCH_BACKUP) ?? false);
  // As for info --set: the named object does not exist, said as an error (JSON: the error object, not a report of problems).
  if (onlyMissingSet && o.output === 'json') throw new PgpitrError('ERR_NOT_FOUND', `no complete backup ${set} in stanza "${o.stanza}": nothing verified`, { hint: 'pgpitr info shows whether it is running, interrupted or failed' });
  if (o.output === 'json') {
    const first = outcomes[0]!.result;
    const each = outcomes.map((r) => ({ repo: r.index, location: r.location, ...(r.error ? { error: r.error.message } : { ok: r.result!.problems.length === 0, ...reportJson(r.result!) }) }));
    process.stdout.write(JSON.stringify({ format_version: 1, ok: problems === 0 && outcomes.every((r) => !r.error), ...(first ? reportJson(first) : {}), repositories: each }, null, 2) + '\n');
  } else {
    for (const r of onlyMissingSet ? [] : outcomes) {
      const p = several ? `repo${r.index}: ` : '';
      if (r.error) {
        printLine(`${p}ERROR: ${r.error.message}`);
        continue;
      }
      const report = r.result!;
      for (const b of report.backups) printLine(`${p}backup ${b.id}: ${b.files} files, ${b.bytes} bytes read`);
      if (report.walFiles > 0) printLine(`${p}archive: ${report.walFiles} WAL files read`);
      // The object once: most messages name it (a stored file's path, a segment) already. Files of one
      // bundle that is damaged (cut short: every file past the cut) are said once, with how many.
      for (const g of groupByBundle(report.problems)) {
        const x = g[0]!;
        const line = x.problem.includes(x.object) ? x.problem : `${x.object}: ${x.problem}`;
        printLine(`${p}PROBLEM ${x.scope}: ${line}${g.length > 1 ? ` (and ${g.length - 1} more file(s) stored in the same bundle: --output json lists each)` : ''}`);
      }
    }
    printLine(problems === 0 ? 'verify: ok' : onlyMissingSet ? `verify: no complete backup ${set} in stanza "${o.stanza}": nothing verified (pgpitr info shows whether it is running, interrupted or failed)` : `verify: ${problems} problem(s)`);
  }
  // Problems found are exit 7; a repository that could not be verified at all is its error's code.
  if (problems === 0) throwFirstFailure(outcomes);
  return problems === 0 ? ExitCode.Ok : onlyMissingSet ? ExitCode.NotFound : ExitCode.CheckFailed;
}

/** The report under the names every command's JSON uses (snake_case, as info, check, expire and status). */
function reportJson(r: VerifyReport): Record<string, unknown> {
  return { backups: r.backups, wal_files: r.walFiles, archive_gaps: r.archiveGaps, problems: r.problems };
}

/** Problems in order, those of files stored in one bundle of one backup together (the first standing for them). */
export function groupByBundle(problems: VerifyReport['problems']): VerifyReport['problems'][] {
  const groups: VerifyReport['problems'][] = [];
  const byBundle = new Map<string, VerifyReport['problems']>();
  for (const x of problems) {
    const range = / \(bytes \d+-\d+\)$/.exec(x.object);
    const bundle = range === null ? null : `${x.scope}\0${x.object.slice(0, range.index)}`;
    const g = bundle === null ? undefined : byBundle.get(bundle);
    if (g) g.push(x);
    else {
      const fresh = [x];
      groups.push(fresh);
      if (bundle !== null) byBundle.set(bundle, fresh);
    }
  }
  return groups;
}
