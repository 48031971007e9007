// `pgpitr basebackup`: parse pg_basebackup-style options, run the engine with a
// progress view, map the outcome to an exit code. SIGINT/SIGTERM abort the run
// (with clean-up) instead of killing the process mid-write.

import { parseBasebackupArgs } from './basebackup-args.js';
import { BASEBACKUP_HELP } from './basebackup-help.js';
import { takeBaseBackup } from '../../backup/engine.js';
import { ProgressView } from '../progress-view.js';
import { ExitCode } from '../exit-codes.js';
import { promptPassword } from '../prompt.js';
import { PGPITR_VERSION } from '../../common/version.js';
import { conditionOf } from '../../protocol/connection-errors.js';

export async function basebackupCommand(argv: string[]): Promise<number> {
  const parsed = parseBasebackupArgs(argv);
  if (parsed.help) {
    process.stdout.write(BASEBACKUP_HELP);
    return ExitCode.Ok;
  }
  if (parsed.version) {
    process.stdout.write(`pgpitr basebackup ${PGPITR_VERSION}\n`);
    return ExitCode.Ok;
  }
  const opts = parsed.options;
  if (parsed.promptPassword && !parsed.noPassword) opts.connection.password = await promptPassword();

  const view = new ProgressView({ progress: opts.progress, format: parsed.progressFormat, verbose: parsed.verbose });
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const run = () => takeBaseBackup(opts, view, ac.signal);
    try {
      await run();
    } catch (e) {
      // Like libpq: ask for a password when the server wants one and none was given.
      if (!needsPassword(e) || parsed.noPassword || opts.connection.password !== undefined || !process.stdin.isTTY) throw e;
      opts.connection.password = await promptPassword();
      await run();
    }
    return ExitCode.Ok;
  } finally {
    view.done(null);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function needsPassword(e: unknown): boolean {
  return conditionOf(e) === 'no-password';
}
