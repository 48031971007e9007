// `pgpitr verify [--set ID]`: every stored file of every backup, every
// archived WAL file, and each backup's WAL range (repo/verify.ts); exit 7 when
// anything is wrong, each problem named by path.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { readStanza } from '../../repo/stanza.js';
import { verifyStanza } from '../../repo/verify.js';
import { openChosenRepository } from '../../repo/open-repository.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';

const HELP = `pgpitr verify re-reads a stanza's backups and archived WAL against their checksums.

Usage:
  pgpitr verify --repo PATH --stanza NAME [--set ID] [--output json]

      --set=ID   verify one backup (and its WAL range) only
Exit status: 0 all good, 7 a problem was found (each is printed with its path).
${REPO_OPTIONS_HELP}`;

export async function verifyCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('verify', argv, { extra: { set: { type: 'string' } } });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const repo = await openChosenRepository(o.repos, o.repoSelected);
  const stanza = await readStanza(repo, o.stanza);
  const report = await verifyStanza(repo, o.stanza, stanza.wal_segment_size, {
    set: o.extra['set'] as string | undefined,
    processMax: o.processMax,
  });
  if (o.output === 'json') process.stdout.write(JSON.stringify({ ok: report.problems.length === 0, ...report }, null, 2) + '\n');
  else {
    for (const b of report.backups) printLine(`backup ${b.id}: ${b.files} files, ${b.bytes} bytes read`);
    if (report.walFiles > 0) printLine(`archive: ${report.walFiles} WAL files read`);
    for (const p of report.problems) printLine(`PROBLEM ${p.scope}: ${p.object}: ${p.problem}`);
    printLine(report.problems.length === 0 ? 'verify: ok' : `verify: ${report.problems.length} problem(s)`);
  }
  return report.problems.length === 0 ? ExitCode.Ok : ExitCode.CheckFailed;
}
