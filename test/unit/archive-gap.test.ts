// archive-get's question before it answers "not found" in a recovery to the
// end of the archive: is a later segment archived along the branch recovery
// follows (a gap), or is this the end? On a real posix repository.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { archivedAfter } from '../../src/repo/archive-gap.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123458';

function segment(tli: number, segNo: number): Buffer {
  return walSegment({ segNo, segmentSize: SEG, systemId: SYSID, timeline: tli });
}

test('a segment missing with a later one archived along the branch is a gap; the end of a timeline is not', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-gap-'));
  try {
    mkdirSync(join(root, 'repo'));
    const repo = repositoryOn(new PosixStorage(join(root, 'repo')), join(root, 'repo'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    const name = (tli: number, segNo: number) => segmentFileName(tli, BigInt(segNo), SEG);
    const push = (tli: number, segNo: number) => pushWalFile(repo, info, name(tli, segNo), segment(tli, segNo), { compression: 'none' });
    const after = async (tli: number, segNo: number, follows: number | null = null) => (await archivedAfter(repo, 'main', name(tli, segNo), SEG, follows))?.name ?? null;

    // Timeline 1: 1 to 5, then 7, and one in the next directory (4096 segments of 1 MiB per directory).
    for (const s of [1, 2, 3, 4, 5, 7]) await push(1, s);
    assert.equal(await after(1, 6), name(1, 7), '6 is a gap: 7 is archived');
    assert.equal(await after(1, 8), null, 'the end of the archive');
    await push(1, 4096 + 3);
    assert.equal(await after(1, 8), name(1, 4099), 'found in a later directory');

    // Timeline 2 forks from 1 in segment 9 (timeline 1's 4099 is then another history): along the
    // branch of 2, timeline 1 is read only up to segment 8.
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/900000\tno recovery target specified\n'), { compression: 'none' });
    await push(2, 9);
    await push(2, 10);
    assert.equal(await after(1, 8), name(2, 9), 'then replay goes on in timeline 2: 8 is a gap');
    assert.equal(await after(2, 11), null, 'the end of timeline 2');
    assert.equal(await after(1, 11), null, 'timeline 1 asked for after its fork (PostgreSQL trying older timelines): never a gap');
    // Recovery that follows timeline 1 (--target-timeline current: restore passes --recovery-timeline 1):
    // timeline 2 is not its WAL, timeline 1 after the fork is.
    assert.equal(await after(1, 8, 1), name(1, 4099));
    assert.equal(await after(1, 4100, 1), null, 'the end of timeline 1, whatever timeline 2 holds');
    assert.equal(await after(2, 11, 1), null, 'a timeline that is not on the branch followed');
    assert.equal(await after(1, 8, 2), name(2, 9), 'following timeline 2 by number: as its newest');
    await push(2, 13);
    assert.equal(await after(2, 11), name(2, 13));
    assert.equal(await after(2, 14), null);
    // A .partial past the missing segment (the end of a timeline, or receive-wal's) is WAL past it too.
    await pushWalFile(repo, info, `${name(2, 16)}.partial`, segment(2, 16), { compression: 'none' });
    assert.equal(await after(2, 14), `${name(2, 16)}.partial`, 'named as archived');
    assert.equal(await after(2, 16), null, 'the .partial of the segment asked for itself: its end, not a gap');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
