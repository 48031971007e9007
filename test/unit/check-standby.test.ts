// check against a standby with archive_mode on (commands/check-standby.ts): the stanza's newest
// segment judged against the standby's replay position: a primary whose archiving stopped is
// said, not passed.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { standbyArchived } from '../../src/commands/check-standby.js';
import type { Finding } from '../../src/commands/check-finding.js';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123462';

test('check on a standby: the stanza\'s newest segment against where the standby replayed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-check-standby-'));
  try {
    const repo = repositoryOn(new PosixStorage(dir), dir);
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    const client = (lsn: string | null) => ({ query: async <T>() => ({ rows: [{ lsn, size: String(SEG), tli: 1 }] as T[] }) });
    const repos = [{ index: 1, repo }];
    let findings: Finding[] = [];
    const add = (f: Finding) => void findings.push(f);
    assert.equal(await standbyArchived(client('0/300100'), repos, 'main', add), null);
    assert.match(findings[0]!.message, /the stanza holds no WAL segment/);
    for (const n of [1, 2]) await pushWalFile(repo, info, segmentFileName(1, BigInt(n), SEG), walSegment({ segNo: n, segmentSize: SEG, systemId: SYSID }), { compression: 'none' });
    findings = [];
    assert.deepEqual(await standbyArchived(client('0/400100'), repos, 'main', add), { wal: segmentFileName(1, 2n, SEG), repos: new Set([1]), switched: false });
    assert.equal(findings[0]!.ok, true, 'replaying segment 4: 3 may still be on its way');
    findings = [];
    assert.equal(await standbyArchived(client('0/500100'), repos, 'main', add), null);
    assert.equal(findings[0]!.ok, false);
    assert.match(findings[0]!.message, /replayed up to 0\/500100, and the stanza's newest WAL segment is 000000010000000000000002: its primary's archiving is behind or failing/);
    // An abandoned timeline-1 future far ahead says nothing of the primary of a standby on timeline 2.
    await pushWalFile(repo, info, segmentFileName(1, 9n, SEG), walSegment({ segNo: 9, segmentSize: SEG, systemId: SYSID }), { compression: 'none' });
    await pushWalFile(repo, info, segmentFileName(2, 2n, SEG), walSegment({ segNo: 2, segmentSize: SEG, systemId: SYSID, timeline: 2 }), { compression: 'none' });
    const onTwo = (lsn: string) => ({ query: async <T>() => ({ rows: [{ lsn, size: String(SEG), tli: 2 }] as T[] }) });
    findings = [];
    assert.equal(await standbyArchived(onTwo('0/500100'), repos, 'main', add), null);
    assert.match(findings[0]!.message, /newest WAL segment is 000000020000000000000002: its primary's archiving is behind or failing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
