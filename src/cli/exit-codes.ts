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
  ArchiveGetError: 8, // archive-get failed for another reason than a missing file (never 1)
  ConnectionLost: 9, // a connection that was made was lost mid-operation
  Interrupted: 130, // stopped by SIGINT/SIGTERM
  // `pgpitr status`
  StatusRunning: 10,
  StatusFailed: 11,
  StatusInterrupted: 12,
  // `archive-get`: the file is not in the archive (recovery then knows it reached the end)
  ArchiveNotFound: 1,
} as const;

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
      return ExitCode.Failure;
  }
}
