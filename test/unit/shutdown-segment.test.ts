// A segment a primary stopped cleanly began only for its shutdown checkpoint holds no transaction
// (postgres/shutdown-segment.ts): restore --delta to the end of the archive does not refuse it. It
// is one only when pg_control agrees (shut down as a primary, the checkpoint at the segment's first
// record, on its timeline) and that record is the segment's only one.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdsOnlyShutdownCheckpoint } from '../../src/postgres/shutdown-segment.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { crc32cJs } from '../../src/storage/filter/crc32c.js';
import { SEG, WalBuilder, filler, record, walSwitch } from '../helpers/wal-builder.js';

const START = 5n * BigInt(SEG);
const NAME = segmentFileName(1, 5n, SEG);

function control(dir: string, state: number, checkPoint: bigint, timeline = 1): void {
  const b = Buffer.alloc(8192);
  b.writeBigUInt64LE(7n, 0);
  b.writeInt32LE(state, 16);
  b.writeBigUInt64LE(checkPoint, 32);
  b.writeBigUInt64LE(checkPoint, 40);
  b.writeUInt32LE(timeline, 48);
  writeFileSync(join(dir, 'global', 'pg_control'), b);
}

test('holdsOnlyShutdownCheckpoint: one checkpoint record first in the segment, pg_control shut down there', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-shutseg-'));
  try {
    mkdirSync(join(dir, 'global'));
    const only = new WalBuilder(START, 1);
    const cp = only.add(record(0, 0x00, Buffer.alloc(88)));
    assert.equal(cp, START + 40n);
    const seg = join(dir, NAME);
    writeFileSync(seg, only.segment(0));
    const judge = () => holdsOnlyShutdownCheckpoint(dir, seg, NAME, SEG, crc32cJs);
    control(dir, 1, cp);
    assert.equal(judge(), true);
    control(dir, 6, cp);
    assert.equal(judge(), false, 'in production (killed): WAL may follow');
    control(dir, 2, cp);
    assert.equal(judge(), false, 'a standby shut down in recovery');
    control(dir, 1, cp, 2);
    assert.equal(judge(), false, 'another timeline');
    control(dir, 1, cp + 8n);
    assert.equal(judge(), false, 'the checkpoint elsewhere');
    // Transactions before the checkpoint (no WAL switch at the stop: archiving off or failing).
    const more = new WalBuilder(START, 1);
    more.add(filler(200));
    const later = more.add(record(0, 0x00, Buffer.alloc(88)));
    writeFileSync(seg, more.segment(0));
    control(dir, 1, later);
    assert.equal(judge(), false);
    // A record after it (impossible once shut down, but then it is not only the checkpoint).
    const after = new WalBuilder(START, 1);
    const first = after.add(record(0, 0x00, Buffer.alloc(88)));
    after.add(filler(40));
    writeFileSync(seg, after.segment(0));
    control(dir, 1, first);
    assert.equal(judge(), false);
    // Another record first (pg_control pointing there: damaged, or not this segment's), or a WAL switch after the checkpoint.
    const other = new WalBuilder(START, 1);
    const notCp = other.add(record(10, 0x00, Buffer.alloc(88)));
    writeFileSync(seg, other.segment(0));
    control(dir, 1, notCp);
    assert.equal(judge(), false, 'not a checkpoint record');
    const switched = new WalBuilder(START, 1);
    const cp2 = switched.add(record(0, 0x00, Buffer.alloc(88)));
    switched.add(walSwitch());
    writeFileSync(seg, switched.segment(0));
    control(dir, 1, cp2);
    assert.equal(judge(), false, 'a WAL switch after it');
    writeFileSync(seg, only.segment(0).subarray(0, 8192));
    control(dir, 1, cp);
    assert.equal(judge(), false, 'a short file');
    assert.equal(holdsOnlyShutdownCheckpoint(join(dir, 'none'), seg, NAME, SEG, crc32cJs), false, 'no pg_control');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
