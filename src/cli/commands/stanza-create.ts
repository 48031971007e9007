// `pgpitr stanza-create`: records a cluster in the repository (system
// identifier, major version, WAL segment size), creating the repository if
// needed. Run again on the same cluster it changes nothing.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { openChosenRepository } from '../../repo/open-repository.js';
import { stanzaCreate } from '../../commands/stanza-create.js';
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
  const repo = await openChosenRepository(o.repos, o.repoSelected);
  const { info, created } = await stanzaCreate(repo, o.stanza, o.connection);
  if (o.output === 'json') process.stdout.write(JSON.stringify({ created, ...info }, null, 2) + '\n');
  else printLine(`stanza "${info.stanza}" ${created ? 'created' : 'already exists'}: system ${info.system_identifier}, PostgreSQL ${info.pg_major}, repository ${repo.location}`);
  return ExitCode.Ok;
}
