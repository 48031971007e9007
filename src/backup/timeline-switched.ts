// A standby that followed its upstream to a new timeline during a backup (a cascading standby whose
// upstream was promoted): the backup would need the WAL of two timelines, which pgpitr's own
// manifest (-j) and a repository's record do not carry. Said the same by both paths.

import { PgpitrError } from '../common/errors.js';

export function timelineSwitched(from: number, to: number): PgpitrError {
  return new PgpitrError('ERR_SERVER', `the standby switched from timeline ${from} to timeline ${to} during the backup (its upstream was promoted): the backup is not usable`, {
    hint: 'take the backup again, now that the standby is on the new timeline',
  });
}
