// Handing a prefetched segment to restore_command: claimed in the spool first
// (the fetcher cannot remove it meanwhile), and refused when it is another
// database system's (a spool shared by stanza name, left by a killed fetcher of
// another cluster's recovery): the caller then fetches the segment itself.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { takePrefetched } from '../../src/archiving/prefetch.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const NAME = '000000010000000000000003';

test('a prefetched segment is handed over only when it is of the system recovered', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-take-'));
  try {
    const ours = walSegment({ segNo: 3, segmentSize: SEG, systemId: '7300000000000000001', timeline: 1 });
    const theirs = walSegment({ segNo: 3, segmentSize: SEG, systemId: '7300000000000000002', timeline: 1 });
    const dest = join(dir, 'RECOVERYXLOG');
    assert.equal(takePrefetched(dir, NAME, dest, '7300000000000000001'), false, 'nothing prefetched');
    writeFileSync(join(dir, NAME), theirs);
    assert.equal(takePrefetched(dir, NAME, dest, '7300000000000000001'), false, "another system's segment");
    assert.equal(existsSync(dest), false);
    assert.deepEqual(readdirSync(dir), [], 'and it is gone from the spool');
    writeFileSync(join(dir, NAME), ours);
    assert.equal(takePrefetched(dir, NAME, dest, '7300000000000000001'), true);
    assert.ok(readFileSync(dest).equals(ours));
    assert.deepEqual(readdirSync(dir).sort(), ['RECOVERYXLOG']);
    // Without a system to compare with (a restore_command without --system-id outside a data directory): handed over.
    writeFileSync(join(dir, NAME), theirs);
    assert.equal(takePrefetched(dir, NAME, join(dir, 'other'), null), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
