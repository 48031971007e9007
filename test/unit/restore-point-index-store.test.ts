// The restore point index in a repository: a push writes a segment's record
// before the segment (so a stored segment never lacks it), and only for a
// segment that needs one; a record counts only for the content its name gives
// (one a killed push left, for content never stored, says nothing); a damaged
// record makes restore read that segment; expire's list of records to remove
// holds those of the segments it removes, and only those.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { sha256 } from '../../src/repo/wal-digest.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { openRestorePointIndex, restorePointEntriesOf } from '../../src/repo/restore-point-index.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import type { WriteOptions } from '../../src/storage/storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { SEG, WalBuilder, filler, restorePoint } from '../helpers/wal-builder.js';

class OrderedStorage extends PosixStorage {
  writes: string[] = [];
  override async write(path: string, source: Buffer | AsyncIterable<Buffer> | Readable, opts?: WriteOptions): Promise<void> {
    await super.write(path, source, opts);
    this.writes.push(path);
  }
}

test('a push writes the record of a segment holding a restore point before the segment, and none for the others', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-rpindex-'));
  try {
    const storage = new OrderedStorage(root);
    const repo = repositoryOn(storage, root);
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: '7', pg_major: 16, wal_segment_size: SEG });
    assert.equal(info.restore_point_index, 1, 'a new stanza has the index');
    const w = new WalBuilder(0n, 3);
    w.add(filler(100));
    const point = w.add(restorePoint('before_upgrade', Date.UTC(2026, 11, 5)));
    while (w.next() < BigInt(2 * SEG + 100)) w.add(filler(3000));
    w.closePages();
    const names = [0, 1].map((i) => segmentFileName(1, BigInt(i), SEG));
    for (const [i, name] of names.entries()) await pushWalFile(repo, info, name, w.segment(i), { compression: 'none' });
    const records = storage.writes.filter((p) => p.startsWith('main/restore-points/'));
    assert.deepEqual(records, [`main/restore-points/${names[0]}-${sha256(w.segment(0))}.json`], 'only the segment with the point has a record');
    assert.ok(storage.writes.indexOf(records[0]!) < storage.writes.findIndex((p) => p.startsWith(`main/archive/`) && p.includes(names[0]!)), 'the record before its segment');

    const warnings: string[] = [];
    const index = (await openRestorePointIndex(repo, 'main', (l) => warnings.push(l)))!;
    const entry = await index.entry(names[0]!, sha256(w.segment(0)));
    assert.deepEqual(entry?.points.map((p) => [p.name, p.lsn, p.timeMs]), [['before_upgrade', point, Date.UTC(2026, 11, 5)]]);
    assert.equal(await index.entry(names[1]!, sha256(w.segment(1))), null, 'no record: nothing there');
    assert.equal(await index.entry(names[0]!, 'f'.repeat(64)), null, 'a record of other content says nothing of this one');

    // A damaged record: the segment is read instead (undefined), with a warning.
    const dir = join(root, 'main', 'restore-points');
    const damaged = `${names[1]}-${sha256(w.segment(1))}.json`;
    writeFileSync(join(dir, damaged), '{"segment": "');
    const again = (await openRestorePointIndex(repo, 'main', (l) => warnings.push(l)))!;
    assert.equal(await again.entry(names[1]!, sha256(w.segment(1))), undefined);
    assert.match(warnings.join('\n'), new RegExp(`restore point index record .*${damaged} could not be read .*: segment ${names[1]} is read instead`));

    // Expire removes the records of the segments it removes, and only those.
    const doomed = await restorePointEntriesOf(repo, 'main', [{ name: names[1]!, sha256: sha256(w.segment(1)) }]);
    assert.deepEqual(doomed, [`main/restore-points/${damaged}`]);
    assert.equal(readdirSync(dir).length, 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
