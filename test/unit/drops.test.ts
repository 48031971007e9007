// Records of WAL dropped by asynchronous archive-push: expire removes those
// whose whole range lies before the WAL it keeps, and keeps the others (and
// any it cannot read).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropsBefore, listDrops, recordDrop } from '../../src/repo/drops.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';

const SEG = 16 * 1024 * 1024;

test('drop records before the kept WAL are the ones expire removes', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-drops-'));
  try {
    const repo = repositoryOn(new PosixStorage(root), root);
    const drop = (first: string, last: string, at: string) =>
      recordDrop(repo, 'main', { first, last, count: 1, queued_bytes: 0, queue_max_bytes: 0, host: 'h', pg_wal: '/pg_wal', at });
    await drop('000000010000000000000003', '000000010000000000000005', '2026-12-01T10:00:00.000Z');
    await drop('000000010000000000000008', '000000010000000000000009', '2026-12-01T11:00:00.000Z');
    mkdirSync(join(root, 'main', 'archive-drops'), { recursive: true });
    writeFileSync(join(root, 'main', 'archive-drops', '20261201T090000Z-000000010000000000000001.json'), 'not json');
    assert.deepEqual(await dropsBefore(repo, 'main', 6n, SEG), ['main/archive-drops/20261201T100000Z-000000010000000000000003.json']);
    assert.deepEqual(await dropsBefore(repo, 'main', 9n, SEG), ['main/archive-drops/20261201T100000Z-000000010000000000000003.json'], 'a range reaching the kept WAL stays');
    assert.equal((await dropsBefore(repo, 'main', 10n, SEG)).length, 2);
    assert.deepEqual(await dropsBefore(repo, 'other', 10n, SEG), [], 'no record, nothing');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("drop records of another system's WAL are not the stanza's (listDrops leaves them out)", async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-drops-'));
  try {
    const repo = repositoryOn(new PosixStorage(root), root);
    await createStanza(repo, { stanza: 'main', system_identifier: '7441234567890123456', pg_major: 16, wal_segment_size: SEG });
    const drop = (first: string, system?: string) =>
      recordDrop(repo, 'main', { first, last: first, count: 1, queued_bytes: 0, queue_max_bytes: 0, host: 'h', pg_wal: '/pg_wal', at: `2026-12-01T10:00:0${first.slice(-1)}.000Z`, ...(system ? { system_identifier: system } : {}) });
    await drop('000000010000000000000003', '7441234567890123456');
    await drop('000000010000000000000004', '7441234567890999999');
    await drop('000000010000000000000005');
    assert.deepEqual((await listDrops(repo, 'main')).map((d) => d.first), ['000000010000000000000003', '000000010000000000000005']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
