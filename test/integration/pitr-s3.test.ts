// The point-in-time-recovery matrix (test/helpers/pitr-matrix.ts) with the
// repository in S3 (a test server over HTTPS with a test CA), plain and
// encrypted, and on an encrypted posix repository. What differs between
// versions is proved by the posix matrix on 13–18 (pitr-targets.test.ts); here
// the storage and its encryption are tested, on the newest of PGPITR_TEST_VERSIONS.

import { versionsFromEnv } from '../harness/pg-versions.js';
import { pitrMatrix } from '../helpers/pitr-matrix.js';
import type { RepoKind } from '../helpers/pitr.js';

const kinds = (process.env.PGPITR_PITR_REPOS ?? 's3').split(',') as RepoKind[];
for (const version of versionsFromEnv().slice(-1)) for (const kind of kinds) pitrMatrix(version, kind);
