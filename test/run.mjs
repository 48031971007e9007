// The test command (npm test, .ci/run): installs missing system packages, then
// runs the unit tests, then the harness and integration tests (two node:test runs, each with its summary). The suite runs on the versions in
// PGPITR_TEST_VERSIONS (default 15,18); a file testing what does not change with the server's version takes
// one of them (the first, 15, whose pg_verifybackup and pg_waldump judge our output, or the newest); compatibility tests
// (protocol + basebackup) also on PGPITR_COMPAT_VERSIONS (default 13-18), and the
// point-in-time-recovery matrix on PGPITR_PITR_VERSIONS (default 13-18), the
// receive-wal crash test on PGPITR_CRASH_VERSIONS (default 18), the PITR matrix on S3 on
// PGPITR_PITR_REPOS (default s3-cipher: S3 and encryption at once). initdb runs once per version
// and arguments, into PGPITR_TEST_INITDB_CACHE (default: a directory of this run, removed at its
// end; empty: no cache), and every test cluster is a copy (test/harness/initdb.ts).
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const setup = spawnSync('bash', [join(root, 'scripts/setup-test-env.sh')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);

const testFiles = (dirs) => dirs.flatMap((dir) => readdirSync(join(root, dir)).sort().filter((f) => f.endsWith('.test.js')).map((f) => join(dir, f)));
const env = {
  ...process.env,
  PGPITR_TEST_VERSIONS: process.env.PGPITR_TEST_VERSIONS ?? '15,18',
  PGPITR_COMPAT_VERSIONS: process.env.PGPITR_COMPAT_VERSIONS ?? '13,14,15,16,17,18',
  PGPITR_PITR_VERSIONS: process.env.PGPITR_PITR_VERSIONS ?? '13,14,15,16,17,18',
  // receive-wal killed at random moments: what is tested is pgpitr's own files, one version proves it.
  PGPITR_CRASH_VERSIONS: process.env.PGPITR_CRASH_VERSIONS ?? '18',
  // The PITR matrix again with the repository in S3 and encrypted (pitr-s3.test.ts), on the newest of PGPITR_TEST_VERSIONS:
  // S3 without encryption is covered by s3-repository.test.ts, encryption on posix by encryption.test.ts.
  PGPITR_PITR_REPOS: process.env.PGPITR_PITR_REPOS ?? 's3-cipher',
  PGPITR_TEST_INITDB_CACHE: process.env.PGPITR_TEST_INITDB_CACHE ?? join(tmpdir(), `pgpitr-initdb-${process.pid}`),
};
// Needed by npm (a registry behind a private CA), not by the tests: their only TLS server is their own
// S3 server, whose CA they name. Each Node start pays ~80 ms for it, and the suite starts thousands.
delete env.NODE_EXTRA_CA_CERTS;
// Unit tests start no server and time nothing: two files at a time (the machine's two cores; about a
// minute instead of two). The clusters of the harness and integration tests, one file at a time.
const run = (concurrency, dirs) => spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...testFiles(dirs)], { stdio: 'inherit', cwd: root, env }).status ?? 1;
const unit = run(2, ['dist/test/unit']);
const integration = run(1, ['dist/test/harness', 'dist/test/integration']);
if (process.env.PGPITR_TEST_INITDB_CACHE === undefined) rmSync(env.PGPITR_TEST_INITDB_CACHE, { recursive: true, force: true });
process.exit(unit !== 0 ? unit : integration);
