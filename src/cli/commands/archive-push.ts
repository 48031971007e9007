// `pgpitr archive-push %p` for archive_command: stores one WAL file in the
// stanza's archive. Idempotent: the same content already archived succeeds
// with a warning; different content fails. Exit codes stay between 1 and 125
// so that a failure never makes PostgreSQL's archiver restart.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import { readStanza } from '../../repo/stanza.js';
import { pushWalFile } from '../../repo/archive-store.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { printError, printLine } from '../output.js';
import { usageError } from '../../common/errors.js';
import type { PgpitrError } from '../../common/errors.js';

const HELP = `pgpitr archive-push stores a WAL file in the repository (for archive_command).

Usage:
  archive_command = 'pgpitr archive-push --repo PATH --stanza NAME %p'

${REPO_OPTIONS_HELP}
Exit status: 0 stored (or already stored with the same content), 2-7 on failure
(PostgreSQL retries the file later).
`;

export async function archivePushCommand(argv: string[]): Promise<number> {
  try {
    const o = parseRepoOptions('archive-push', argv);
    if (o.help) {
      process.stdout.write(HELP);
      return ExitCode.Ok;
    }
    const [source, ...extra] = o.positionals;
    if (!source || extra.length > 0) throw usageError('give exactly one WAL file path (%p)');
    const stanza = readStanza(o.repo, o.stanza);
    const outcome = await pushWalFile(o.repo, stanza, source, { compression: o.compression, level: o.level });
    if (outcome.status === 'already-archived') {
      printLine(`warning: WAL file "${source}" is already archived with the same content; nothing to do`);
    }
    return ExitCode.Ok;
  } catch (e) {
    printError(e);
    const code = exitCodeFor((e as PgpitrError).code);
    return code > 125 ? ExitCode.Failure : code;
  }
}
