// What a repository backup records of page checksum failures: its own for the files it stores, and those of the earlier
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
  const got = recordedChecksumFailures([], m, [full]).recorded;
  assert.deepEqual(got, [`${inBase} (in backup ${full.id}, whose copy of the file this backup takes)`, `${inTs} (in backup ${full.id}, whose copy of the file this backup takes)`]);
  // A file stored again (changed since) is not the full backup's copy: nothing carried for it.
  assert.deepEqual(recordedChecksumFailures([], manifest([file('base/5/16384'), file('pg_tblspc/16400/PG_16_202307071/5/16390')]), [full]).recorded, []);
});

test('one stream reads every file again: a failure in a file it stores is its own, once; in one it takes from an earlier backup, that backup\'s copy is what it holds; the total stays last', () => {
  const total = '2 total checksum verification failures';
  // Stored by this backup: its own messages, not carried again from the full.
  const storedAgain = manifest([file('base/5/16384'), file('pg_tblspc/16400/PG_16_202307071/5/16390')]);
  assert.deepEqual(recordedChecksumFailures([inBase, inTs, total], storedAgain, [full]), { recorded: [inBase, inTs, total], ownStored: 2, olderCopies: [] });
  // Taken from the full (size and time unchanged): what the full recorded of its copy, and the files said apart; no total.
  const m = manifest([file('base/5/16384', full.id), file('pg_tblspc/16400/PG_16_202307071/5/16390', full.id)]);
  const got = recordedChecksumFailures([inBase, inTs, total], m, [full]);
  assert.deepEqual(got.recorded, [`${inBase} (in backup ${full.id}, whose copy of the file this backup takes)`, `${inTs} (in backup ${full.id}, whose copy of the file this backup takes)`]);
  assert.deepEqual(got.olderCopies, [{ path: 'base/5/16384', from: full.id }, { path: 'pg_tblspc/16400/PG_16_202307071/5/16390', from: full.id }]);
  // An earlier copy that was whole (the damage came later, changing neither size nor time): nothing recorded.
  const whole = { id: full.id } as unknown as BackupRecord;
  assert.deepEqual(recordedChecksumFailures([inBase, 'base backup: checksum verification failure during base backup'], manifest([file('base/5/16384', full.id)]), [whole]), { recorded: [], ownStored: 0, olderCopies: [{ path: 'base/5/16384', from: full.id }] });
  // An earlier backup that recorded failures without their files (client_min_messages above warning): its copy's state is not known, so the run's message is kept.
  const unnamed = { id: full.id, page_checksum_failures: ['base backup: checksum verification failure during base backup'] } as unknown as BackupRecord;
  const kept = recordedChecksumFailures([inBase], manifest([file('base/5/16384', full.id)]), [unnamed]).recorded;
  assert.deepEqual(kept, [`${inBase} (in the source; backup ${full.id}, whose copy of the file this backup takes, did not record which files it met failures in)`]);
  const many = Array.from({ length: MAX_RECORDED_FAILURES + 10 }, (_, i) => `checksum verification failed in file "./base/5/${i}", block 0: calculated 1 but expected 2`);
  const cut = recordedChecksumFailures([...many, total], manifest([]), []).recorded;
  assert.equal(cut.length, MAX_RECORDED_FAILURES);
  assert.equal(cut[cut.length - 1], total);
});
