// `pgpitr archive-get %f %p` for restore_command: fetches, decompresses and
// verifies one WAL file. Exit 1 means "not in the archive" (recovery then
// knows it reached the end of the archive); every real error exits with
// another code, so that recovery never ends early because of a damaged file.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { getWalFile } from '../../repo/archive-store.js';
import { checkRepository } from '../../repo/stanza.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { printError } from '../output.js';
import { usageError } from '../../common/errors.js';
import type { PgpitrError } from '../../common/errors.js';

const HELP = `pgpitr archive-get fetches a WAL file from the repository (for restore_command).

Usage:
  restore_command = 'pgpitr archive-get --repo PATH --stanza NAME %f "%p"'

${REPO_OPTIONS_HELP}
Exit status: 0 fetched, 1 not in the archive, 2-8 real errors (never 1).
`;

export async function archiveGetCommand(argv: string[]): Promise<number> {
  try {
    const o = parseRepoOptions('archive-get', argv);
    if (o.help) {
      process.stdout.write(HELP);
      return ExitCode.Ok;
    }
    const [name, dest, ...extra] = o.positionals;
    if (!name || !dest || extra.length > 0) throw usageError('give the WAL file name (%f) and the destination path (%p)');
    checkRepository(o.repo);
    const found = await getWalFile(o.repo, o.stanza, name, dest);
    return found ? ExitCode.Ok : ExitCode.ArchiveNotFound;
  } catch (e) {
    printError(e);
    const code = exitCodeFor((e as PgpitrError).code);
    return code === ExitCode.ArchiveNotFound || code > 125 ? ExitCode.ArchiveGetError : code;
  }
}
