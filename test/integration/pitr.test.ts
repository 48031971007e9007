// Point-in-time recovery end to end (test/helpers/pitr-matrix.ts) on a posix
// repository, on every version of PGPITR_PITR_VERSIONS (13-18 in CI).

import { versionsFromEnv } from '../harness/pg-versions.js';
import { pitrMatrix } from '../helpers/pitr-matrix.js';

for (const version of versionsFromEnv('PGPITR_PITR_VERSIONS')) pitrMatrix(version);
