// What node:util's parseArgs says of a bad command line, in pgpitr's words: an unknown option is
// named once, with the closest known one ("--target-tme": did you mean --target-time?), not with
// parseArgs' advice about "--" and its unbalanced quotes.

import { usageError } from '../common/errors.js';
import type { PgpitrError } from '../common/errors.js';
import { closestCommand } from './closest-command.js';

export function argsError(e: unknown, command: string, options: Record<string, unknown>): PgpitrError {
  const err = e as Error & { code?: string };
  if (err.code === 'ERR_USAGE') return err as PgpitrError;
  const help = `try "pgpitr ${command} --help"`;
  const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /Unknown option '([^']*)'/.exec(err.message)?.[1] : undefined;
  if (unknown === undefined) return usageError(err.message, help);
  const name = unknown.startsWith('--') ? unknown.slice(2).split('=')[0]! : null;
  const near = name === null ? undefined : closestCommand(name, Object.keys(options));
  return usageError(`unrecognized option "${unknown}"${near !== undefined ? `: did you mean --${near}?` : ''}`, help);
}
