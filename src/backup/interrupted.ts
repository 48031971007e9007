// The error a base backup ends with after SIGINT or SIGTERM (exit 130), and what its hint
// says of what was kept.

import { PgpitrError } from '../common/errors.js';
import type { BaseBackupOptions } from './options.js';

export function interrupted(opts: BaseBackupOptions): PgpitrError {
  // What -n (or a --resume run) keeps is taken over by --resume where it can be (-j, plain, a directory).
  const kept = opts.noClean || opts.resume === true;
  const resumable = kept && opts.parallel !== undefined && opts.parallel.readMethod !== 'sql' && opts.format === 'plain' && opts.target.kind === 'directory';
  return new PgpitrError('ERR_INTERRUPTED', 'base backup interrupted by a signal', {
    hint: resumable ? 'what was copied is kept: run it again with --resume (same options) to take it over' : kept ? 'what was written is kept (-n), but is not a usable backup; run the backup again' : 'nothing usable was kept; run the backup again',
  });
}
