// receive-wal -D: WAL already in the directory that another database system wrote is refused
// (exit 5) before anything is received: resuming would overwrite its .partial and mix the two
// systems' WAL. The newest readable file says (plain or gzip, a gzip .partial cut short too); a
// .partial not written yet is passed over.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { refuseOtherSystem } from '../../src/wal/received-system.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const A = '7441234567890123461';
const B = '7441234567890123999';

test('receive-wal -D refuses a directory holding another system\'s WAL, by its newest readable file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-received-system-'));
  try {
    const name = (s: number) => segmentFileName(1, BigInt(s), SEG);
    writeFileSync(join(dir, name(3)), walSegment({ segNo: 3, segmentSize: SEG, systemId: A }));
    writeFileSync(join(dir, `${name(4)}.partial`), walSegment({ segNo: 4, segmentSize: SEG, systemId: A }));
    const names = () => readdirSync(dir);
    assert.doesNotThrow(() => refuseOtherSystem(dir, names(), A, SEG));
    assert.throws(() => refuseOtherSystem(dir, names(), B, SEG), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_TARGET');
      assert.match(e.message, new RegExp(`holds WAL of database system ${A} \\(${name(4)}\\.partial\\), and the server is system ${B}`));
      return true;
    });
    // A .partial just created (zeros): the segment before it says.
    writeFileSync(join(dir, `${name(4)}.partial`), Buffer.alloc(SEG));
    assert.throws(() => refuseOtherSystem(dir, names(), B, SEG), new RegExp(`\\(${name(3)}\\)`));
    // gzip (-Z): a .gz.partial being written, cut short.
    rmSync(join(dir, `${name(4)}.partial`));
    const gz = gzipSync(walSegment({ segNo: 5, segmentSize: SEG, systemId: B }));
    writeFileSync(join(dir, `${name(5)}.gz.partial`), gz.subarray(0, Math.min(gz.length, 4096)));
    assert.doesNotThrow(() => refuseOtherSystem(dir, names(), B, SEG));
    assert.throws(() => refuseOtherSystem(dir, names(), A, SEG), new RegExp(`\\(${name(5)}\\.gz\\.partial\\)`));
    // Nothing received yet: nothing to refuse.
    assert.doesNotThrow(() => refuseOtherSystem(dir, [], B, SEG));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
