// Which timeline's file of a segment number a recovery reads along the branch it follows
// (repo/followed-branch.ts): archive-get answers "not found" for an older timeline's file past the
// fork, judged across repositories as archive-get reads them (one unreadable, or of another
// system, passed over; the newest timeline any holds followed when none is named).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { followedBranch, offBranch } from '../../src/repo/followed-branch.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import type { Repository } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123458';
const name = (tli: number, segNo: number) => segmentFileName(tli, BigInt(segNo), SEG);

async function repoAt(root: string, dir: string, system = SYSID): Promise<{ repo: Repository; info: Awaited<ReturnType<typeof createStanza>>['info'] }> {
  mkdirSync(join(root, dir));
  const repo = repositoryOn(new PosixStorage(join(root, dir)), join(root, dir));
  const { info } = await createStanza(repo, { stanza: 'main', system_identifier: system, pg_major: 16, wal_segment_size: SEG });
  return { repo, info };
}

test('followedBranch / offBranch: the parent timeline\'s file past the fork is not the branch\'s, across repositories', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-branch-'));
  try {
    const a = await repoAt(root, 'a');
    const b = await repoAt(root, 'b');
    const foreign = await repoAt(root, 'c', '7441234567890123999');
    // Timeline 2 forks from 1 in segment 9 (0/900000): only repository b holds its history; the
    // foreign system's stanza has a timeline 3 of its own.
    await pushWalFile(b.repo, b.info, '00000002.history', Buffer.from('1\t0/900000\tno recovery target specified\n'), { compression: 'none' });
    await pushWalFile(foreign.repo, foreign.info, '00000003.history', Buffer.from('1\t0/400000\tno recovery target specified\n'), { compression: 'none' });
    const none = () => {};
    const latest = await followedBranch([a.repo, foreign.repo, b.repo], 'main', null, SYSID, none);
    assert.equal(latest.follows, 2, 'the newest timeline of this system, not the foreign one');
    assert.ok(latest.spans);
    assert.equal(offBranch(latest.spans!, latest.onBranch, name(1, 8), SEG), null, 'before the fork: timeline 1\'s own');
    assert.equal(offBranch(latest.spans!, latest.onBranch, name(1, 9), SEG), 2, 'the fork segment is timeline 2\'s');
    assert.equal(offBranch(latest.spans!, latest.onBranch, name(1, 12), SEG), 2, 'past the fork');
    assert.equal(offBranch(latest.spans!, latest.onBranch, name(2, 12), SEG), null);
    assert.equal(offBranch(latest.spans!, latest.onBranch, name(5, 12), SEG), null, 'a timeline not on the branch is not judged');
    // Timeline 1 named (--recovery-timeline 1): its files are all its own.
    const one = await followedBranch([a.repo, b.repo], 'main', 1, SYSID, none);
    assert.equal(offBranch(one.spans!, one.onBranch, name(1, 12), SEG), null);
    // A repository that cannot be read (here: no such directory): passed over (said), b still judges.
    const down = repositoryOn(new PosixStorage(join(root, 'gone')), join(root, 'gone'));
    const passed: string[] = [];
    const withDown = await followedBranch([down, b.repo], 'main', null, SYSID, (_r, e) => void passed.push(e.message));
    assert.equal(withDown.follows, 2);
    assert.equal(offBranch(withDown.spans!, withDown.onBranch, name(1, 12), SEG), 2);
    assert.equal(passed.length, 1);
    assert.equal(withDown.failed, true, 'the answer may be short of what the repository down holds');
    assert.equal(latest.failed, false);

    // Timeline 3 forks from 2 in segment 9 too, where 2 began: 2 gives replay no segment, yet
    // PostgreSQL following 3 asks for its file when 3's is not archived: past 3's fork, abandoned WAL.
    await pushWalFile(b.repo, b.info, '00000003.history', Buffer.from('1\t0/900000\tno recovery target specified\n2\t0/980000\tno recovery target specified\n'), { compression: 'none' });
    const three = await followedBranch([a.repo, b.repo], 'main', null, SYSID, none);
    assert.equal(three.follows, 3);
    assert.deepEqual(three.onBranch, [1, 2, 3]);
    assert.ok(!three.spans!.some((x) => x.timeline === 2), 'timeline 2 has no span of its own');
    assert.equal(offBranch(three.spans!, three.onBranch, name(2, 9), SEG), 3, 'timeline 2\'s file of the fork segment is judged, not passed');
    assert.equal(offBranch(three.spans!, three.onBranch, name(2, 10), SEG), 3);
    assert.equal(offBranch(three.spans!, three.onBranch, name(1, 9), SEG), 3);
    assert.equal(offBranch(three.spans!, three.onBranch, name(1, 8), SEG), null);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
