// A restore that ends plans with what receive-wal received past the archive (repo/received-wal-view.ts):
// each timeline's run on its own. After a promotion the old timeline's .partial stays beside the
// new timeline's: both are offered (recovery's branch reads the new one's), not only the first.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { openWalArchiveView } from '../../src/repo/wal-archive-view.js';
import { withReceivedWal } from '../../src/repo/received-wal-view.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123461';
const name = (tli: number, segNo: number) => segmentFileName(tli, BigInt(segNo), SEG);

test('received WAL past the archive: the old timeline\'s .partial and the new one\'s after a promotion are both offered', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-received-view-'));
  try {
    const repo = repositoryOn(new PosixStorage(root), root);
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    // Timeline 1 archived to 0x18; promoted in 0x19 (timeline 2's history archived).
    for (const s of [0x17, 0x18]) await pushWalFile(repo, info, name(1, s), walSegment({ segNo: s, segmentSize: SEG, systemId: SYSID }), { compression: 'none' });
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/19000E18\tno recovery target specified\n'), { compression: 'none' });
    const rx = join(root, 'main', 'receive-wal');
    mkdirSync(rx, { recursive: true });
    writeFileSync(join(rx, `${name(1, 0x19)}.partial`), walSegment({ segNo: 0x19, segmentSize: SEG, systemId: SYSID }));
    // Just after the promotion: timeline 2's first segment (the promotion's) being received.
    writeFileSync(join(rx, `${name(2, 0x19)}.partial`), walSegment({ segNo: 0x19, segmentSize: SEG, systemId: SYSID, timeline: 2 }));
    const early = await withReceivedWal(await openWalArchiveView(repo, 'main'), repo, 'main', SEG, SYSID, () => {});
    assert.ok(early.names().includes(name(1, 0x19)) && early.names().includes(name(2, 0x19)), early.names().join(' '));
    // Later: timeline 2's 0x19 archived, 0x1A being received.
    rmSync(join(rx, `${name(2, 0x19)}.partial`));
    await pushWalFile(repo, info, name(2, 0x19), walSegment({ segNo: 0x19, segmentSize: SEG, systemId: SYSID, timeline: 2 }), { compression: 'none' });
    writeFileSync(join(rx, `${name(2, 0x1a)}.partial`), walSegment({ segNo: 0x1a, segmentSize: SEG, systemId: SYSID, timeline: 2 }));
    const lines: string[] = [];
    const view = await withReceivedWal(await openWalArchiveView(repo, 'main'), repo, 'main', SEG, SYSID, (l) => lines.push(l));
    const names = view.names();
    assert.ok(names.includes(name(1, 0x19)) && names.includes(name(2, 0x1a)), names.join(' '));
    assert.match(lines.join('\n'), new RegExp(`WAL segments ${name(1, 0x19)} \\(in part\\), ${name(2, 0x1a)} \\(in part\\) are not archived yet`));
    assert.equal((await view.readSegment(name(2, 0x1a), []))!.length, SEG);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
