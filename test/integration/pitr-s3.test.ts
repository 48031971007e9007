// The point-in-time-recovery matrix (test/helpers/pitr-matrix.ts) with the
// repository in S3 (a test server over HTTPS with a test CA), plain and
// encrypted, and on an encrypted posix repository, on PGPITR_TEST_VERSIONS
// (15 and 18 in CI).

import { versionsFromEnv } from '../harness/pg-versions.js';
import { pitrMatrix } from '../helpers/pitr-matrix.js';
import type { RepoKind } from '../helpers/pitr.js';

const kinds = (process.env.PGPITR_PITR_REPOS ?? 's3').split(',') as RepoKind[];
for (const version of versionsFromEnv()) for (const kind of kinds) pitrMatrix(version, kind);
