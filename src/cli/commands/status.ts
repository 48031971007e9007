// `pgpitr status DIR [--output json]`: is the backup in DIR complete, still
// running, failed, or interrupted (state "running" but its process is gone)?
// The exit code says it too (docs/exit-codes.md).

import { argsError } from '../args-error.js';
import { parseArgs } from 'node:util';
import { readStateFile, assessState, sameBootGone, stateFileAge, unjudgeableBecause } from '../../backup/state-file.js';
import type { AssessedStatus } from '../../backup/state-file.js';
import { ExitCode } from '../exit-codes.js';
import { usageError } from '../../common/errors.js';
import { oneLine } from '../output.js';

const HELP = `pgpitr status tells whether the backup in a directory finished.

Usage:
  pgpitr status DIRECTORY [--output text|json]

With --output json: assessed_status is the answer (the state file's own "status"
says "running" until the run ends, also for a run that died); the state file's
fields follow it.

Exit status: 0 complete, 10 running (or written on another host or in another
container, where its process cannot be looked at: said), 11 failed, 12 interrupted
(the process that wrote it is gone), 6 no pgpitr backup state in DIRECTORY,
2 invalid options, 5 the state file cannot be read.
`;

const CODES: Record<AssessedStatus, number> = {
  complete: ExitCode.Ok,
  running: ExitCode.StatusRunning,
  failed: ExitCode.StatusFailed,
  interrupted: ExitCode.StatusInterrupted,
};

const OPTIONS = { output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: '?' } } as const;

export async function statusCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (e) {
    throw argsError(e, 'status', OPTIONS);
  }
  if (parsed.values.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const output = parsed.values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw usageError(`invalid output format "${output}", must be "text" or "json"`);
  const dir = parsed.positionals[0];
  if (!dir || parsed.positionals.length > 1) throw usageError('give exactly one backup directory', 'pgpitr status DIRECTORY');
  const state = readStateFile(dir);
  const age = stateFileAge(dir);
  const status = assessState(state, age);
  const why = state.status === 'running' ? unjudgeableBecause(state) : null;
  if (output === 'json') {
    process.stdout.write(JSON.stringify({ directory: dir, assessed_status: status, process_judged_here: why === null, ...state }, null, 2) + '\n');
  } else {
    const lines = [`backup in "${dir}": ${status}`, `  label: ${oneLine(String(state.label ?? ''))}`, `  started: ${state.started_at} by pid ${state.pid} on ${state.host}`];
    if (state.finished_at) lines.push(`  finished: ${state.finished_at} (${state.duration_seconds}s)`);
    if (state.start_lsn) lines.push(`  start LSN: ${state.start_lsn} on timeline ${state.timeline}`);
    if (state.stop_lsn) lines.push(`  stop LSN: ${state.stop_lsn}${state.stop_timeline !== undefined ? ` on timeline ${state.stop_timeline}` : ''}`);
    if (state.bytes !== undefined) lines.push(`  bytes: ${state.bytes}`);
    if (state.error) lines.push(`  error: ${state.error}`);
    for (const f of state.checksum_failures ?? []) lines.push(`  ${f}`);
    if (status === 'interrupted') lines.push('  the process that wrote this backup is gone: the backup is NOT usable');
    const where = why === 'another host' ? `on host ${state.host}` : 'in another pid namespace (another container of this host)';
    const touched = age === null ? '' : ` (its state file was last touched ${Math.round(age / 1000)} s ago)`;
    if (status === 'running' && why !== null) lines.push(`  written ${where}: whether its process still runs cannot be told from here${touched}; run pgpitr status there, and treat the backup as not usable until it says complete`);
    if (status === 'interrupted' && why !== null) lines.push(sameBootGone(state) ? '  it ran before this host\'s last boot' : `  written ${where}, whose process cannot be looked at from here: it stopped touching its state file${touched}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return CODES[status];
}
