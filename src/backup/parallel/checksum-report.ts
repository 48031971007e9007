// Page checksum failures found by a parallel backup's readers, reported as the
// server reports them for BASE_BACKUP: a warning per failed block (the first
// five of a file), a total per file, and at the end one error with SQLSTATE
// XX001's meaning — data corrupted — that keeps the backup for inspection, as
// pg_basebackup does.

import { PgpitrError } from '../../common/errors.js';
import type { ChecksumFailure } from './read-job.js';

const SHOWN_PER_FILE = 5;

/** The backup met page checksum failures: the data copied is kept, marked failed (exit 4, as pg_basebackup). */
export class ChecksumFailureError extends PgpitrError {
  constructor(readonly failures: number) {
    super('ERR_SERVER', 'checksum verification failure during base backup', {
      hint: 'the files and blocks are named in the warnings above; check the data directory for corruption, or take the backup with --no-verify-checksums to copy it as it is',
    });
    this.name = 'ChecksumFailureError';
  }
}

export class ChecksumReport {
  private total = 0;

  constructor(private readonly warn: (message: string) => void) {}

  add(file: string, failures: readonly ChecksumFailure[], partialPage: boolean): void {
    if (partialPage) this.warn(`could not verify checksum in file "${file}": it ends inside a page`);
    failures.slice(0, SHOWN_PER_FILE).forEach((f) =>
      this.warn(`checksum verification failed in file "${file}", block ${f.block}: calculated ${hex(f.calculated)} but expected ${hex(f.expected)}`),
    );
    if (failures.length > 1) this.warn(`file "${file}" has a total of ${failures.length} checksum verification failures`);
    this.total += failures.length;
  }

  /** The end of the copy: failures end the backup, unless they are only recorded (the repository backup). */
  end(recorded = false): void {
    if (this.total === 0) return;
    if (this.total > 1) this.warn(`${this.total} total checksum verification failures`);
    if (!recorded) throw new ChecksumFailureError(this.total);
  }
}

function hex(n: number): string {
  return n.toString(16).toUpperCase();
}
