// One error hierarchy for the whole tool. Every error carries a stable `code`;
// the CLI maps codes to exit codes (src/cli/exit-codes.ts) and nothing below the
// CLI decides how the process ends. Server errors keep PostgreSQL's SQLSTATE,
// detail and hint.

export type ErrorCode =
  | 'ERR_USAGE' // invalid option or combination: the user must change the command line
  | 'ERR_CONNECTION' // could not connect or authenticate
  | 'ERR_CONNECTION_LOST' // a connection that was made ended mid-operation (server stopped, connection terminated, network)
  | 'ERR_SERVER' // the server reported an error (SQLSTATE kept)
  | 'ERR_PROTOCOL' // the server sent something we do not understand
  | 'ERR_UNSUPPORTED' // the server version or set-up does not support the request
  | 'ERR_TARGET' // the output location cannot be used (exists, not empty, no permission)
  | 'ERR_STORAGE' // an I/O error while writing or reading backup files (disk full, ...)
  | 'ERR_UNSAFE_PATH' // a path from the stream would escape its target
  | 'ERR_INTERRUPTED' // stopped by a signal
  | 'ERR_NOT_FOUND' // the object asked for does not exist
  | 'ERR_CHECK' // a configuration check found a problem
  | 'ERR_INTERNAL';

export interface ErrorDetails {
  hint?: string;
  detail?: string;
  cause?: unknown;
}

export class PgpitrError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly detail?: string;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PgpitrError';
    this.code = code;
    if (details.hint !== undefined) this.hint = details.hint;
    if (details.detail !== undefined) this.detail = details.detail;
  }
}

/**
 * Content that was read and is not valid (an object that fails to decrypt): damage, as opposed
 * to a failure to read, which says nothing of what is stored.
 */
export class DamagedContentError extends PgpitrError {
  constructor(message: string, details: ErrorDetails = {}) {
    super('ERR_STORAGE', message, details);
  }
}

/** An object encrypted with another repository key than the one opened (`keyId`: the object's). */
export class OtherKeyError extends DamagedContentError {
  constructor(
    message: string,
    readonly keyId: string,
    details: ErrorDetails = {},
  ) {
    super(message, details);
  }
}

/** Fields of a PostgreSQL ErrorResponse / NoticeResponse (protocol "Error and Notice Message Fields"). */
export interface ServerErrorFields {
  severity?: string;
  sqlState?: string;
  message?: string;
  detail?: string;
  hint?: string;
}

export class ServerError extends PgpitrError {
  readonly sqlState: string | undefined;
  readonly severity: string | undefined;

  constructor(fields: ServerErrorFields, context?: string) {
    const text = fields.message ?? 'unknown server error';
    super(endsConnection(fields) ? 'ERR_CONNECTION_LOST' : 'ERR_SERVER', context ? `${context}: ${text}` : text, {
      ...(fields.detail !== undefined ? { detail: fields.detail } : {}),
      ...(fields.hint !== undefined ? { hint: fields.hint } : {}),
    });
    this.name = 'ServerError';
    this.sqlState = fields.sqlState;
    this.severity = fields.severity;
  }
}

/**
 * A FATAL error of class 57 (operator intervention: admin_shutdown, crash_shutdown,
 * idle_session_timeout...) is the server ending the connection, not refusing a
 * request: the same outcome as a connection closed without a word.
 */
function endsConnection(fields: ServerErrorFields): boolean {
  return fields.severity === 'FATAL' && (fields.sqlState?.startsWith('57') ?? false);
}

export function usageError(message: string, hint?: string): PgpitrError {
  return new PgpitrError('ERR_USAGE', message, hint === undefined ? {} : { hint });
}

export function isPgpitrError(e: unknown): e is PgpitrError {
  return e instanceof PgpitrError;
}

/** Node's system errors carry `code` like 'ENOSPC'; name the file and say what to do. */
/**
 * A file or directory of the cluster being backed up that pgpitr reads itself (-j, the direct read
 * method) and cannot: not the target's fault, and the way out is another user or read method.
 */
export function sourceError(action: string, path: string, cause: unknown): PgpitrError {
  const sys = (cause as NodeJS.ErrnoException | undefined)?.code;
  const why = cause instanceof Error ? cause.message : String(cause);
  const denied = sys === 'EACCES' || sys === 'EPERM';
  return new PgpitrError('ERR_STORAGE', `could not ${action} "${path}" of the cluster being backed up: ${why}`, {
    cause,
    ...(denied ? { hint: SOURCE_DENIED_HINT } : {}),
  });
}

export const SOURCE_DENIED_HINT =
  "with -j and the direct read method pgpitr reads the data directory and its tablespaces itself: run it as the server's operating-system user (or make them readable to the user it runs as), or give --read-method=sql to read through the server";

/** For EMFILE (this process's limit) and ENFILE (the system's). */
export const OPEN_FILES_HINT = 'too many open files: raise the open-file limit of the process (ulimit -n 1024 or more; LimitNOFILE= for a systemd service)';

export function storageError(action: string, path: string, cause: unknown): PgpitrError {
  const sys = (cause as NodeJS.ErrnoException | undefined)?.code;
  const why = cause instanceof Error ? cause.message : String(cause);
  let hint: string | undefined;
  if (sys === 'ENOSPC') hint = 'free space on the target file system or choose another target directory';
  else if (sys === 'EACCES' || sys === 'EPERM') hint = 'check the permissions of the target directory';
  else if (sys === 'EDQUOT') hint = 'the disk quota is exhausted on the target';
  else if (sys === 'EMFILE' || sys === 'ENFILE') hint = OPEN_FILES_HINT;
  return new PgpitrError('ERR_STORAGE', `could not ${action} "${path}": ${why}`, {
    cause,
    ...(hint ? { hint } : {}),
  });
}
