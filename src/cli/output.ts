// Messages to the user on stderr, in pg_basebackup's manner ("pgpitr: error: ...",
// then DETAIL / HINT lines), and the error printer used by main.ts.

import { OPEN_FILES_HINT, PgpitrError, ServerError } from '../common/errors.js';

export const PROGRAM = 'pgpitr';

export function printLine(text: string): void {
  process.stderr.write(`${PROGRAM}: ${text}\n`);
}

export function printError(e: unknown): void {
  if (e instanceof PgpitrError) {
    printLine(`error: ${e.message}`);
    if (e instanceof ServerError && e.sqlState) process.stderr.write(`${PROGRAM}: sqlstate: ${e.sqlState}\n`);
    if (e.detail) process.stderr.write(`${PROGRAM}: detail: ${e.detail}\n`);
    if (e.hint) process.stderr.write(`${PROGRAM}: hint: ${e.hint}\n`);
    return;
  }
  const err = e as NodeJS.ErrnoException;
  printLine(`error: ${err?.message ?? String(e)}`);
  if (err?.code === 'EMFILE' || err?.code === 'ENFILE') process.stderr.write(`${PROGRAM}: hint: ${OPEN_FILES_HINT}\n`);
  if (process.env.PGPITR_DEBUG && err?.stack) process.stderr.write(err.stack + '\n');
}

/** A value given by a user (an annotation, a label) shown on one line: control characters escaped, so it can never pass for another line of the report. */
export function oneLine(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
