// archive-get at the end of the archive, in a recovery that ends, handing over what receive-wal
// received (commands/archive-get.ts fromReceiver, wal/pg-wal-file.ts placeInPgWal): a .partial
// into pg_wal, marked archived, replacing a shorter copy of the same WAL there (a backup's copy of
// its stop segment, zeros after the stop) and a recycled file, keeping a longer one, stopping
// recovery when the two differ; a whole segment stored in the archive, then fetched.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveGet } from '../../src/commands/archive-get.js';
import type { ArchiveGetRequest } from '../../src/commands/archive-get.js';
import { findStored, pushWalFile } from '../../src/repo/archive-store.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123462';
const name = (segNo: number) => segmentFileName(1, BigInt(segNo), SEG);

/** Segment `segNo` with `bytes` of (made-up) WAL after its header, zeros after. */
function written(segNo: number, bytes: number): Buffer {
  const b = walSegment({ segNo, segmentSize: SEG, systemId: SYSID });
  for (let i = 0; i < bytes; i++) b[100 + i] = (i % 250) + 1;
  return b;
}

test('archive-get hands over what receive-wal received past the archive', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-handover-'));
  try {
    mkdirSync(join(root, 'repo'));
    const repo = repositoryOn(new PosixStorage(join(root, 'repo')), join(root, 'repo'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    await pushWalFile(repo, info, name(3), written(3, SEG - 200), { compression: 'none' });
    const received = join(root, 'repo', 'main', 'receive-wal');
    mkdirSync(received, { recursive: true });
    const data = join(root, 'data');
    mkdirSync(join(data, 'pg_wal', 'archive_status'), { recursive: true });
    const warnings: string[] = [];
    const req: ArchiveGetRequest = { repos: [{ index: 1, repo }], stanza: 'main', warn: (t) => warnings.push(t), systemId: SYSID, stopAtGap: null, branch: { standby: false }, dataDir: data };
    const dest = join(data, 'pg_wal', 'RECOVERYXLOG');
    const inPgWal = join(data, 'pg_wal', name(5));

    // A whole segment receive-wal has not stored: stored now, then given as archived.
    writeFileSync(join(received, name(4)), written(4, 5000));
    assert.equal(await archiveGet(req, name(4), dest, null), true);
    assert.ok((await findStored(repo, 'main', name(4))) !== null, 'stored in the archive');
    assert.ok(readFileSync(dest).equals(written(4, 5000)));
    assert.match(warnings.pop()!, /received it whole .* it is stored now/);

    // The backup's copy of its stop segment (the same WAL, shorter) is in pg_wal: replaced.
    writeFileSync(inPgWal, written(5, 300));
    writeFileSync(join(received, `${name(5)}.partial`), written(5, 900));
    assert.equal(await archiveGet(req, name(5), dest, null), false, '"not found": recovery reads pg_wal');
    assert.ok(readFileSync(inPgWal).equals(written(5, 900)));
    assert.ok(existsSync(join(data, 'pg_wal', 'archive_status', `${name(5)}.done`)), 'received in part: marked archived');
    // Asked again (a restart), with as much or more in pg_wal than received: kept.
    writeFileSync(inPgWal, written(5, 1200));
    assert.equal(await archiveGet(req, name(5), dest, null), false);
    assert.ok(readFileSync(inPgWal).equals(written(5, 1200)));
    // A recycled file (another segment's header): replaced.
    writeFileSync(inPgWal, written(2, 5000));
    assert.equal(await archiveGet(req, name(5), dest, null), false);
    assert.ok(readFileSync(inPgWal).equals(written(5, 900)));
    // Another WAL under that name: recovery stops, neither is handed over.
    const other = written(5, 300);
    other[150] = 0xff;
    writeFileSync(inPgWal, other);
    await assert.rejects(archiveGet(req, name(5), dest, null), (e: Error & { code?: string }) => e.code === 'ERR_CHECK' && /and what receive-wal received of .* differ/.test(e.message));
    assert.ok(readFileSync(inPgWal).equals(other), 'left as it was');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('archive-get: of several repositories\' receivers the longest copy is handed over; copies that differ stop recovery; a whole received segment fills a hole before the gap check', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-handover2-'));
  try {
    const repos = [];
    for (const n of [1, 2]) {
      mkdirSync(join(root, `repo${n}`));
      const repo = repositoryOn(new PosixStorage(join(root, `repo${n}`)), join(root, `repo${n}`));
      const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
      for (const s of [3, 5]) await pushWalFile(repo, info, name(s), written(s, 1000), { compression: 'none' });
      mkdirSync(join(root, `repo${n}`, 'main', 'receive-wal'), { recursive: true });
      repos.push({ index: n, repo });
    }
    const data = join(root, 'data');
    mkdirSync(join(data, 'pg_wal', 'archive_status'), { recursive: true });
    const warnings: string[] = [];
    const gapCheck = { timeline: null, inDataDir: async () => false };
    const req: ArchiveGetRequest = { repos, stanza: 'main', warn: (t) => warnings.push(t), systemId: SYSID, stopAtGap: gapCheck, branch: { standby: false }, dataDir: data };
    const dest = join(data, 'pg_wal', 'RECOVERYXLOG');
    // 4 is missing between 3 and 5 (a gap), but repo2's receiver holds it whole: stored, then given.
    writeFileSync(join(root, 'repo2', 'main', 'receive-wal', name(4)), written(4, 4000));
    assert.equal(await archiveGet(req, name(4), dest, null), true);
    assert.ok((await findStored(repos[1]!.repo, 'main', name(4))) !== null);
    // 6 received in part by both: repo2's is longer, and is the one handed over.
    writeFileSync(join(root, 'repo1', 'main', 'receive-wal', `${name(6)}.partial`), written(6, 300));
    writeFileSync(join(root, 'repo2', 'main', 'receive-wal', `${name(6)}.partial`), written(6, 800));
    assert.equal(await archiveGet(req, name(6), dest, null), false);
    assert.ok(readFileSync(join(data, 'pg_wal', name(6))).equals(written(6, 800)));
    // 7: the two differ where they overlap.
    writeFileSync(join(root, 'repo1', 'main', 'receive-wal', `${name(7)}.partial`), written(7, 300));
    const other = written(7, 800);
    other[120] = 0xff;
    writeFileSync(join(root, 'repo2', 'main', 'receive-wal', `${name(7)}.partial`), other);
    await assert.rejects(archiveGet(req, name(7), dest, null), (e: Error & { code?: string }) => e.code === 'ERR_CHECK' && /copies of .* differ/.test(e.message));
    // 8: repo1's copy cannot be read: recovery stops rather than end on repo2's shorter one.
    mkdirSync(join(root, 'repo1', 'main', 'receive-wal', `${name(8)}.partial`));
    writeFileSync(join(root, 'repo2', 'main', 'receive-wal', `${name(8)}.partial`), written(8, 300));
    await assert.rejects(archiveGet(req, name(8), dest, null), (e: Error & { code?: string }) => e.code === 'ERR_STORAGE' && /could not be read .*recovery is stopped/.test(e.message));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
