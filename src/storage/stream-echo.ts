// When a write gives up (a full disk, a permission), the streams feeding it are cut: whoever
// writes into them next meets an echo of that failure (an AbortError, a stream closed before it
// drained, a chunk queue whose consumer stopped), often before the write's own error has reached
// anyone. The echo names nothing; the write's error names the file and the cause.

const ECHO_CODES = new Set(['ABORT_ERR', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);
const ECHO_MESSAGES = new Set(['the consumer of the chunks stopped', 'write after the output was closed', 'the output was closed before it drained', 'the backup failed: nothing more is stored']);

/** Whether `e` only says a stream was cut, not why. */
export function isStreamEcho(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  // Also one wrapped by a write that names its file ("could not write ...: Premature close").
  return e.name === 'AbortError' || (typeof code === 'string' && ECHO_CODES.has(code)) || ECHO_MESSAGES.has(e.message) || (e.cause !== undefined && e.cause !== e && isStreamEcho(e.cause));
}

/** The error to report: the write's own failure when what was caught is only its echo. */
export function firstCause(caught: unknown, writeFailure: unknown): unknown {
  return writeFailure !== null && writeFailure !== undefined && isStreamEcho(caught) && !isStreamEcho(writeFailure) ? writeFailure : caught;
}
