// archive-get run by PostgreSQL, judging an older timeline's segment against the branch recovery
// follows (commands/archive-get.ts leftByBranch): past the fork, "not found"; but when restore_command
// does not name the timeline followed and the newest timeline's file of that segment is archived,
// PostgreSQL follows another timeline (it would have been given that file), and "not found" would end
// its recovery early: a recovery stops (exit 200), a standby is told "not found" and why. When the
// branch cannot be told (a repository that may hold a newer timeline is out of reach), a standby
// stops as a recovery does: "not found" would end a promotion before WAL the archive holds.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveGet } from '../../src/commands/archive-get.js';
import type { ArchiveGetRequest } from '../../src/commands/archive-get.js';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123461';
const name = (tli: number, segNo: number) => segmentFileName(tli, BigInt(segNo), SEG);

test('archive-get: an older timeline\'s segment past the fork, with and without the timeline followed named', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-get-branch-'));
  try {
    mkdirSync(join(root, 'repo'));
    const repo = repositoryOn(new PosixStorage(join(root, 'repo')), join(root, 'repo'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    // Timeline 2 forks from 1 in segment 9; timeline 1 went on (10 is its abandoned future).
    for (const s of [9, 10]) await pushWalFile(repo, info, name(1, s), walSegment({ segNo: s, segmentSize: SEG, systemId: SYSID }), { compression: 'none' });
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/900000\tno recovery target specified\n'), { compression: 'none' });
    const warnings: string[] = [];
    const req = (standby: boolean, followedTimeline: number | null): ArchiveGetRequest => ({
      repos: [{ index: 1, repo }],
      stanza: 'main',
      warn: (t) => warnings.push(t),
      systemId: SYSID,
      stopAtGap: null,
      branch: { standby },
      followedTimeline,
    });
    const dest = join(root, 'got');
    // Following the newest (assumed): timeline 2's file of segment 10 is not archived yet.
    assert.equal(await archiveGet(req(false, null), name(1, 10), dest, null), false);
    assert.ok(!existsSync(dest));
    assert.match(warnings.pop()!, /is not given to recovery: along the timeline it follows \(2\)/);
    // Named: timeline 1 followed, its own file.
    assert.equal(await archiveGet(req(false, 1), name(1, 10), dest, null), true);
    rmSync(dest);

    await pushWalFile(repo, info, name(2, 10), walSegment({ segNo: 10, segmentSize: SEG, systemId: SYSID, timeline: 2 }), { compression: 'none' });
    await assert.rejects(archiveGet(req(false, null), name(1, 10), dest, null), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_CHECK');
      assert.match(e.message, new RegExp(`${name(1, 10)} is asked for while ${name(2, 10)}, the newest timeline's file of that segment, is archived: recovery follows another timeline than the newest`));
      return true;
    });
    assert.equal(await archiveGet(req(true, null), name(1, 10), dest, null), false, 'a standby: "not found", said');
    assert.match(warnings.pop()!, /the standby is told "not found": add --recovery-timeline N to restore_command/);
    assert.equal(await archiveGet(req(false, 2), name(1, 10), dest, null), false, 'timeline 2 named: past its fork, not given');
    assert.equal(await archiveGet(req(false, 1), name(1, 10), dest, null), true, 'timeline 1 named: its own');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('archive-get: a standby following the newest timeline, a repository out of reach: it stops (a fault), never "not found"', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-get-branch-'));
  try {
    mkdirSync(join(root, 'repo'));
    const repo = repositoryOn(new PosixStorage(join(root, 'repo')), join(root, 'repo'));
    // Not mounted: no repository there (it may hold a newer timeline's history file).
    const gone = repositoryOn(new PosixStorage(join(root, 'gone')), join(root, 'gone'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    await pushWalFile(repo, info, name(1, 9), walSegment({ segNo: 9, segmentSize: SEG, systemId: SYSID }), { compression: 'none' });
    const req = (standby: boolean): ArchiveGetRequest => ({
      repos: [{ index: 1, repo }, { index: 2, repo: gone }],
      stanza: 'main',
      warn: () => {},
      systemId: SYSID,
      stopAtGap: null,
      branch: { standby },
      followedTimeline: null,
    });
    const dest = join(root, 'got');
    for (const standby of [true, false]) {
      await assert.rejects(archiveGet(req(standby), name(1, 9), dest, null), (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'ERR_STORAGE');
        assert.match(e.message, /a repository that may hold its history file cannot be read/);
        assert.match(e.hint ?? '', new RegExp(`start the ${standby ? 'standby' : 'server'} again`));
        return true;
      });
      assert.ok(!existsSync(dest));
    }
    // Timeline 1 named (--recovery-timeline 1, as restore writes): nothing to judge, repo1 answers.
    assert.equal(await archiveGet({ ...req(true), followedTimeline: 1 }, name(1, 9), dest, null), true);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
