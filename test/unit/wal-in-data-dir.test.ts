// archive-get's gap check passes over a segment the data directory's pg_wal holds (recovery reads
// it there when the archive has none) only when its WAL goes on past it: a restored backup's stop
// segment is WAL up to the stop, then zeros, and taking it for the segment would end recovery at
// the stop. (A real segment closed by a WAL switch, which does go on: integration archive-gap.)

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { walFileInDataDir } from '../../src/postgres/recovery-signals.js';
import { segmentStart } from '../../src/postgres/lsn.js';
import { crc32c } from '../../src/storage/filter/crc32c.js';

const SEG = 1024 * 1024;
const BLOCK = 8192;
const NAME = '000000010000000000000005';

function segment(whole: boolean): Buffer {
  const b = Buffer.alloc(SEG);
  const start = segmentStart(5n, SEG);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(0x0002, 2);
  b.writeUInt32LE(1, 4);
  b.writeBigUInt64LE(start, 8);
  b.writeBigUInt64LE(7300000000000000000n, 24);
  b.writeUInt32LE(SEG, 32);
  b.writeUInt32LE(BLOCK, 36);
  if (whole) {
    b.writeUInt16LE(0xd110, SEG - BLOCK);
    b.writeUInt32LE(1, SEG - BLOCK + 4);
    b.writeBigUInt64LE(start + BigInt(SEG - BLOCK), SEG - BLOCK + 8);
  }
  return b;
}

test('walFileInDataDir: a segment whose WAL ends inside it (zeros after its header), a short one, or none does not count', () => {
  const dir = mkdtempSync(join(tmpdir(), 'walin-'));
  try {
    mkdirSync(join(dir, 'pg_wal'));
    writeFileSync(join(dir, 'pg_wal', NAME), segment(true));
    assert.equal(walFileInDataDir(dir, NAME, crc32c), false);
    writeFileSync(join(dir, 'pg_wal', NAME), segment(false));
    assert.equal(walFileInDataDir(dir, NAME, crc32c), false);
    writeFileSync(join(dir, 'pg_wal', NAME), segment(true).subarray(0, SEG / 2));
    assert.equal(walFileInDataDir(dir, NAME, crc32c), false);
    assert.equal(walFileInDataDir(dir, '000000010000000000000006', crc32c), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
