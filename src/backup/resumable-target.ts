// basebackup --resume: whether the backup in the target directory may be taken over (its state
// file says it ended without completing, and its process is gone), and what it wrote besides.

import { resolve } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import { RESUME_AFTER_SILENCE_MS, assessState, heartbeatStopped, readStateFile, sameBootGone, stateFileAge, unjudgeableBecause } from './state-file.js';

/**
 * --resume takes over only a backup that ended without completing: interrupted (its process gone)
 * or failed. The directories besides the target that it wrote into (its state file's output_dirs).
 */
export function checkResumable(path: string): { own: string[]; system: string | undefined } {
  const found = readStateFile(resolve(path));
  const age = stateFileAge(resolve(path));
  const status = assessState(found, age);
  // Judged by its heartbeat alone (another host or container): only once silent for long.
  const why = status === 'interrupted' ? unjudgeableBecause(found) : null;
  if (why !== null && !sameBootGone(found) && !heartbeatStopped(found, age, why, RESUME_AFTER_SILENCE_MS)) {
    throw new PgpitrError('ERR_TARGET', `the backup in "${path}" was written ${why === 'another host' ? `on host ${found.host}` : 'in another container'}, whose process cannot be looked at from here, and its state file was touched ${Math.round((age ?? 0) / 1000)} s ago`, {
      hint: `--resume takes it over once its state file has not been touched for ${RESUME_AFTER_SILENCE_MS / 60_000} minutes (a paused process would wake up beside the resumed run); make sure it is gone (pgpitr status where it ran), then run again later`,
    });
  }
  if (status === 'interrupted' || status === 'failed') return { own: found.output_dirs ?? [], system: found.system_identifier };
  throw new PgpitrError('ERR_TARGET', status === 'complete' ? `the backup in "${path}" is complete: there is nothing to resume` : `the backup in "${path}" is still running`, {
    hint: status === 'complete' ? 'take a new backup into another directory' : 'wait for it, or stop it first (pgpitr status shows its process)',
  });
}
