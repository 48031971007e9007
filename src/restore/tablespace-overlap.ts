// A tablespace directory restore refuses before anything is written: one that
// lies inside the data directory or another tablespace's (engine.ts). A delta
// clears what each directory holds beyond the backup's, so nested directories
// would clear each other. Where the backup's own recorded location is the
// cause (a tablespace created inside the data directory, which PostgreSQL
// allows with a warning and `backup` warns about), the target is what cannot be
// used (exit 5); a location the user mapped is the user's option (exit 2).

import { PgpitrError } from '../common/errors.js';

export function tablespaceOverlap(oid: number, name: string | undefined, dir: string, mapped: boolean, dataDir: string): PgpitrError {
  const which = `tablespace ${oid}${name ? ` (${name})` : ''}`;
  if (mapped) {
    return new PgpitrError('ERR_USAGE', `${which}'s directory "${dir}" overlaps the data directory or another tablespace's`, { hint: 'map each tablespace to its own directory outside the data directory (--tablespace-map OID=PATH)' });
  }
  return new PgpitrError('ERR_TARGET', `${which}'s recorded location "${dir}" overlaps the data directory "${dataDir}" or another tablespace's: the tablespace was created inside the source's data directory (PostgreSQL allows it with a warning), and a restore cannot put it back there`, {
    hint: `restore it elsewhere with --tablespace-map ${name ?? oid}=PATH outside the data directory (an in-place restore too: the cluster then uses it there)`,
  });
}
