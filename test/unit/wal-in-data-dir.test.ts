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
import { walSegment } from '../helpers/wal-segment.js';
import { crc32c } from '../../src/storage/filter/crc32c.js';

const SEG = 1024 * 1024;
const NAME = '000000010000000000000005';
const segment = () => walSegment({ segNo: 5, segmentSize: SEG, systemId: '7300000000000000000' });

test('walFileInDataDir: a segment whose WAL ends inside it (zeros after its header), a short one, or none does not count', () => {
  const dir = mkdtempSync(join(tmpdir(), 'walin-'));
  try {
    mkdirSync(join(dir, 'pg_wal'));
    writeFileSync(join(dir, 'pg_wal', NAME), segment());
    assert.equal(walFileInDataDir(dir, NAME, crc32c), false);
    writeFileSync(join(dir, 'pg_wal', NAME), segment().subarray(0, SEG / 2));
    assert.equal(walFileInDataDir(dir, NAME, crc32c), false);
    assert.equal(walFileInDataDir(dir, '000000010000000000000006', crc32c), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
