// `pgpitr stanza-create`: records a cluster in the repository (system
// identifier, major version, WAL segment size), creating the repository if
// needed. Run again on the same cluster it changes nothing.

import { parseRepoOptions, REPO_OPTIONS_HELP, CONNECTION_OPTIONS_HELP } from '../repo-options.js';
import { openEachRepository } from '../../repo/open-repository.js';
import { onEachRepository, throwFirstFailure } from '../each-repository.js';
import { stanzaCreate } from '../../commands/stanza-create.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';
import { ADVISORY_LOCKS_WARNING } from '../../repo/conditional-create.js';

const HELP = `pgpitr stanza-create records a cluster in a repository.

Usage:
  pgpitr stanza-create --repo PATH --stanza NAME [connection options]

${REPO_OPTIONS_HELP}${CONNECTION_OPTIONS_HELP}`;

export async function stanzaCreateCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('stanza-create', argv);
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  // On every repository (or --repo N), as pgBackRest does: WAL goes to each.
  const outcomes = await onEachRepository(await openEachRepository(o.repos, o.repoSelected), ({ repo }) => stanzaCreate(repo, o.stanza, o.connection));
  if (o.output === 'json') {
    const first = outcomes[0]!.result;
    const each = outcomes.map((r) => ({ repo: r.index, location: r.location, ...(r.error ? { error: r.error.message } : { created: r.result!.created, ...r.result!.info, conditional_create: r.result!.conditionalCreate, ...(r.result!.repaired ? { marker_repaired: r.result!.repaired } : {}) }) }));
    process.stdout.write(JSON.stringify({ ...(first ? { created: first.created, ...first.info } : {}), repositories: each }, null, 2) + '\n');
  } else {
    for (const r of outcomes) {
      if (r.error) {
        // Each repository's reason (the exit names only the first's).
        printLine(`repo${r.index} (${r.location}): ERROR: ${r.error.message}`);
        continue;
      }
      const { info, created } = r.result!;
      printLine(`stanza "${info.stanza}" ${created ? 'created' : 'already exists'}: system ${info.system_identifier}, PostgreSQL ${info.pg_major}, repository ${outcomes.length > 1 ? `${r.index} ` : ''}${r.location}`);
    }
  }
  for (const r of outcomes) {
    if (r.result && !r.result.conditionalCreate) printLine(`warning: repository ${r.index} (${r.location}): ${ADVISORY_LOCKS_WARNING}`);
    if (r.result?.repaired) printLine(`repository ${r.index} (${r.location}): ${r.result.repaired}`);
  }
  throwFirstFailure(outcomes);
  return ExitCode.Ok;
}
