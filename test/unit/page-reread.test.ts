// The re-read rule of the parallel backup's readers (page-reread.ts, used by
// read-worker.ts), made deterministic by handing it the second read: a page
// torn by a concurrent write is read again and not reported, the bytes copied
// are the second read's; a page that fails twice is reported with its block;
// a page rewritten since the backup started is skipped on the second look. And
// the real reader threads (read-pool.ts) report a damaged block of a file.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE, pageChecksum, storedChecksum } from '../../src/postgres/page-checksum.js';
import { verifyWithReread } from '../../src/backup/parallel/page-reread.js';
import { ReadPool } from '../../src/backup/parallel/read-pool.js';

const START = 0x5000000n; // the backup's start LSN

/** An initialised page with LSN `lsn`, its tuples filled from `seed`, and a right checksum for `block`. */
function page(block: number, lsn: bigint, seed: number): Buffer {
  const p = Buffer.alloc(PAGE_SIZE);
  p.writeUInt32LE(Number(lsn >> 32n), 0);
  p.writeUInt32LE(Number(lsn & 0xffffffffn), 4);
  p.writeUInt16LE(40, 12); // pd_lower
  p.writeUInt16LE(PAGE_SIZE - 4000, 14); // pd_upper: not a new page
  p.writeUInt16LE(PAGE_SIZE, 16); // pd_special
  for (let i = PAGE_SIZE - 4000; i < PAGE_SIZE; i++) p[i] = (i * 31 + seed) & 0xff;
  p.writeUInt16LE(pageChecksum(p, block), 8);
  return p;
}

test('a torn page is read again and not reported; the copy holds the second read', () => {
  const block = 7;
  const before = page(block, 0x4000000n, 1);
  const after = page(block, 0x4000010n, 2); // the block as the server wrote it while we read (a change older than the start LSN)
  const torn = Buffer.concat([before.subarray(0, 4096), after.subarray(4096)]);
  assert.notEqual(pageChecksum(torn, block), storedChecksum(torn));
  let reads = 0;
  const r = verifyWithReread(torn, block, START, () => {
    reads++;
    return after;
  });
  assert.equal(r, null);
  assert.equal(reads, 1);
  assert.ok(torn.equals(after), 'the page copied is the one read the second time');
});

test('a page that fails twice is reported with its block number, expected and calculated', () => {
  const block = 131072 + 3; // block 3 of segment 1
  const damaged = page(block, 0x4000000n, 5);
  damaged[PAGE_SIZE - 100]! ^= 0xff;
  const again = Buffer.from(damaged);
  const r = verifyWithReread(damaged, block, START, () => again);
  assert.deepEqual(r, { block, calculated: pageChecksum(damaged, block), expected: storedChecksum(damaged) });
});

test('a re-read that comes back short reports the first failure', () => {
  const damaged = page(0, 0x4000000n, 5);
  damaged[5000]! ^= 0x01;
  const r = verifyWithReread(damaged, 0, START, () => null);
  assert.equal(r?.block, 0);
});

test('a file truncated or dropped before the re-read (it ends before the block now) is no failure, and the page copied is zeros, as the server sends', () => {
  const damaged = page(3, 0x4000000n, 6);
  damaged[5000]! ^= 0x01;
  assert.equal(verifyWithReread(damaged, 3, START, () => 'gone'), null);
  assert.ok(damaged.equals(Buffer.alloc(PAGE_SIZE)));
});

test('a page rewritten since the backup started is skipped on the second look', () => {
  const block = 2;
  const torn = page(block, 0x4000000n, 1);
  torn[6000]! ^= 0x10;
  const rewritten = page(block, START + 100n, 9);
  rewritten[6000]! ^= 0x10; // whatever its checksum: WAL replay rewrites it
  assert.equal(verifyWithReread(torn, block, START, () => rewritten), null);
});

test('a good page is not read again', () => {
  const p = page(4, 0x4000000n, 3);
  assert.equal(verifyWithReread(p, 4, START, () => assert.fail('read again')), null);
});

test('the reader threads report a damaged block of a file and copy it as read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-reread-'));
  const pool = new ReadPool(2, () => {});
  try {
    const pages = [0, 1, 2, 3].map((b) => page(b, 0x4000000n, b));
    pages[2]![7000]! ^= 0x01;
    const file = join(dir, '16384');
    writeFileSync(file, Buffer.concat(pages));
    const chunks: Buffer[] = [];
    const r = await pool.run(
      { id: 0, source: file, name: 'base/5/16384', offset: 0, length: 4 * PAGE_SIZE, verify: { blockBase: 0, startLsn: START.toString() }, checksum: null, dest: null, encode: null },
      { chunk: (d) => void chunks.push(Buffer.from(d)) },
    );
    assert.deepEqual(r.failures, [{ block: 2, calculated: pageChecksum(pages[2]!, 2), expected: storedChecksum(pages[2]!) }]);
    assert.ok(Buffer.concat(chunks).equals(Buffer.concat(pages)));
  } finally {
    await pool.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
