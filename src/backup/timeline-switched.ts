// A backup of a standby that starts on one timeline and ends on a newer one: the standby followed
// its upstream's promotion during the backup, or before it, when its last restartpoint (where a
// standby's backup starts) was still on the old timeline (a promoted primary's first checkpoint
// is spread over minutes). The backup would need the WAL of two timelines, which pgpitr's own
// manifest (-j) and a repository's record do not carry. Said the same by both paths.

import { PgpitrError } from '../common/errors.js';

export function timelineSwitched(from: number, to: number): PgpitrError {
  return new PgpitrError('ERR_SERVER', `the backup starts on timeline ${from} and ends on timeline ${to}: the standby followed its upstream's promotion during the backup, or before it while its last restartpoint, where a standby's backup starts, was still on timeline ${from}; the backup is not usable`, {
    hint: `run CHECKPOINT on the promoted primary (its first checkpoint on timeline ${to} may take minutes), wait for the standby to replay it, then take the backup again`,
  });
}
