// What a failed write to standard output means to the user: its reader closed
// the pipe (EPIPE), or the file or device behind it is full (ENOSPC). Either way
// the output is incomplete, so it is an error (ERR_STORAGE), never a silent end.

import { PgpitrError } from '../common/errors.js';

export function stdoutError(cause: Error): PgpitrError {
  const code = (cause as NodeJS.ErrnoException).code;
  const hint =
    code === 'EPIPE'
      ? 'the program reading standard output exited before the end (a pipe to head, or a failed ssh): what it received is incomplete (a backup is not usable); run the command again'
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? 'the file system standard output is written to is full: free space there, or write a backup to a directory with -D DIR'
        : 'check where standard output goes (a file, a pipe or a device that can take the whole output)';
  return new PgpitrError('ERR_STORAGE', `could not write to standard output: ${cause.message}`, { cause, hint });
}
