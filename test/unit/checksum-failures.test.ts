// What a repository backup records of page checksum failures: its own, and those of the earlier
// backups whose copies of files it takes (a -j diff or incr does not read them again), matched by
// path in the data directory or in a tablespace (named by its absolute path), never twice.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { recordedChecksumFailures, MAX_RECORDED_FAILURES } from '../../src/backup/repo/checksum-failures.js';
import type { BackupSetManifest } from '../../src/repo/backup-set/manifest.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';

const inBase = 'checksum verification failed in file "./base/5/16384", block 1: calculated 1 but expected 2';
const inTs = 'checksum verification failed in file "/mnt/ts/PG_16_202307071/5/16390", block 3: calculated 1 but expected 2';
const full = { id: '20261206-000000F', page_checksum_failures: [inBase, inTs] } as unknown as BackupRecord;
const file = (path: string, reference?: string) => ({ path, size: 8192, mode: 0o600, mtime: 0, stored: { object: 'x' }, ...(reference ? { reference } : {}) });
const manifest = (files: ReturnType<typeof file>[]) => ({ files }) as unknown as BackupSetManifest;

test('a -j incr carries the failures of the files it takes from the full backup, in the data directory and in a tablespace', () => {
  const m = manifest([file('base/5/16384', full.id), file('pg_tblspc/16400/PG_16_202307071/5/16390', full.id), file('base/5/99')]);
  const got = recordedChecksumFailures([], m, [full]);
  assert.deepEqual(got, [`${inBase} (in backup ${full.id}, whose copy of the file this backup takes)`, `${inTs} (in backup ${full.id}, whose copy of the file this backup takes)`]);
  // A file stored again (changed since) is not the full backup's copy: nothing carried for it.
  assert.deepEqual(recordedChecksumFailures([], manifest([file('base/5/16384'), file('pg_tblspc/16400/PG_16_202307071/5/16390')]), [full]), []);
});

test('one stream reads every file again: a failure its own messages name is not carried twice; the total stays last', () => {
  const m = manifest([file('base/5/16384', full.id), file('pg_tblspc/16400/PG_16_202307071/5/16390', full.id)]);
  const total = '2 total checksum verification failures';
  assert.deepEqual(recordedChecksumFailures([inBase, inTs, total], m, [full]), [inBase, inTs, total]);
  const many = Array.from({ length: MAX_RECORDED_FAILURES + 10 }, (_, i) => `checksum verification failed in file "./base/5/${i}", block 0: calculated 1 but expected 2`);
  const cut = recordedChecksumFailures([...many, total], manifest([]), []);
  assert.equal(cut.length, MAX_RECORDED_FAILURES);
  assert.equal(cut[cut.length - 1], total);
});
