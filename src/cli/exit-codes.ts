// Exit codes: stable and documented (docs/exit-codes.md). Errors are mapped to
// codes here and only here.

import type { ErrorCode } from '../common/errors.js';

export const ExitCode = {
  Ok: 0,
  Failure: 1, // unexpected internal error
  Usage: 2, // invalid options or combination
  Connection: 3, // could not connect or authenticate
  Server: 4, // the server reported an error, or does not support the request
  Storage: 5, // the target cannot be used or written (exists, not empty, disk full, unsafe path)
  NotFound: 6, // the named object (slot, backup, state file, stanza) does not exist
  CheckFailed: 7, // `check` found a problem in the set-up
  // archive-get (restore_command) failed for any other reason than a file absent from a healthy
  // repository: above 125, so that PostgreSQL stops recovery instead of taking the failure for
  // the end of the archive (1..125 all mean "not found" to it); not 126/127 (the shell's "cannot
  // execute" / "command not found") nor 128+N (a child killed by signal N), to stay recognisable.
  ArchiveGetError: 200,
  ConnectionLost: 9, // a connection that was made was lost mid-operation
  Interrupted: 130, // stopped by SIGINT/SIGTERM
  // `pgpitr status`
  StatusRunning: 10,
  StatusFailed: 11,
  StatusInterrupted: 12,
  // `archive-get`: the repository is healthy and does not hold the file (recovery then knows it
  // reached the end of the archive); nothing else exits 1 from archive-get
  ArchiveNotFound: 1,
} as const;

const FILE_SYSTEM_ERRNOS = new Set(['EACCES', 'EPERM', 'ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'ELOOP', 'EXDEV', 'EMLINK', 'ENAMETOOLONG', 'EMFILE', 'ENFILE']);

export function exitCodeFor(code: ErrorCode | undefined): number {
  switch (code) {
    case 'ERR_USAGE':
      return ExitCode.Usage;
    case 'ERR_CONNECTION':
      return ExitCode.Connection;
    case 'ERR_CONNECTION_LOST':
      return ExitCode.ConnectionLost;
    case 'ERR_SERVER':
    case 'ERR_PROTOCOL':
    case 'ERR_UNSUPPORTED':
      return ExitCode.Server;
    case 'ERR_TARGET':
    case 'ERR_STORAGE':
    case 'ERR_UNSAFE_PATH':
      return ExitCode.Storage;
    case 'ERR_NOT_FOUND':
      return ExitCode.NotFound;
    case 'ERR_CHECK':
      return ExitCode.CheckFailed;
    case 'ERR_INTERRUPTED':
      return ExitCode.Interrupted;
    default:
      // A file system's refusal that reached here unwrapped (no permission, disk full, read-only):
      // the target or the repository cannot be written, not a bug of pgpitr's.
      return FILE_SYSTEM_ERRNOS.has(code as string) ? ExitCode.Storage : ExitCode.Failure;
  }
}

/**
 * The exit code of a command that failed with an error of `code`. archive-get, run by
 * restore_command, exits ArchiveGetError for every failure, whatever its kind (bad options,
 * unreachable repository, damaged file, a bug): any code from 1 to 125 would end recovery early.
 */
export function failureExitCode(command: string, code: ErrorCode | undefined): number {
  if (command === 'archive-get') return ExitCode.ArchiveGetError;
  return exitCodeFor(code);
}
