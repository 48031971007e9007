// pageChecksum's fast path (typed-array views, word-aligned or not, shared
// buffers) against a plain byte-by-byte reading of checksum_impl.h, and the
// page header helpers, verifyPage's skip rules and blockNumberBase. Agreement
// with real servers' pages is in test/integration/page-checksum.test.ts.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  PAGE_SIZE, RELSEG_SIZE, blockNumberBase, pageChecksum, pageIsNew, pageLsn, storedChecksum, verifyPage,
} from '../../src/postgres/page-checksum.js';

const OFFSETS = [
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
];

/** Slow reference: BigInt arithmetic, bytes read one by one, the checksum field zeroed in a copy. */
function referenceChecksum(page: Uint8Array, blkno: number): number {
  const p = Uint8Array.from(page);
  p[8] = 0;
  p[9] = 0;
  const mask = 0xffffffffn;
  const comp = (sum: bigint, value: bigint): bigint => {
    const tmp = (sum ^ value) & mask;
    return (((tmp * 16777619n) & mask) ^ (tmp >> 17n)) & mask;
  };
  const sums = OFFSETS.map(BigInt);
  for (let i = 0; i < PAGE_SIZE / 128; i++) {
    for (let j = 0; j < 32; j++) {
      const at = (i * 32 + j) * 4;
      const v = BigInt(p[at]!) | (BigInt(p[at + 1]!) << 8n) | (BigInt(p[at + 2]!) << 16n) | (BigInt(p[at + 3]!) << 24n);
      sums[j] = comp(sums[j]!, v);
    }
  }
  for (let r = 0; r < 2; r++) for (let j = 0; j < 32; j++) sums[j] = comp(sums[j]!, 0n);
  let result = 0n;
  for (const s of sums) result ^= s;
  result ^= BigInt(blkno);
  return Number((result % 65535n) + 1n);
}

/** Deterministic pseudo-random page with an initialised header. */
function makePage(seed: number, lsn = 0x1_0000_2000n, upper = 0x1f00): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < PAGE_SIZE; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    page[i] = x & 0xff;
  }
  const dv = new DataView(page.buffer);
  dv.setUint32(0, Number(lsn >> 32n), true);
  dv.setUint32(4, Number(lsn & 0xffffffffn), true);
  dv.setUint16(14, upper, true);
  return page;
}

test('pageChecksum agrees with a byte-by-byte reading of the algorithm', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const page = makePage(seed * 7919);
    for (const blk of [0, 1, 77, RELSEG_SIZE, 3 * RELSEG_SIZE + 5, 0xfffffffe]) {
      assert.equal(pageChecksum(page, blk), referenceChecksum(page, blk), `seed ${seed} block ${blk}`);
    }
  }
  // Extreme contents.
  const ones = new Uint8Array(PAGE_SIZE).fill(0xff);
  assert.equal(pageChecksum(ones, 5), referenceChecksum(ones, 5));
  const zeros = new Uint8Array(PAGE_SIZE);
  assert.equal(pageChecksum(zeros, 0), referenceChecksum(zeros, 0));
});

test('the stored checksum does not take part, and the page is not modified', () => {
  const page = makePage(42);
  const before = Uint8Array.from(page);
  const a = pageChecksum(page, 9);
  page[8] = 0x34;
  page[9] = 0x12;
  assert.equal(pageChecksum(page, 9), a);
  page[10] ^= 1; // pd_flags, right after pd_checksum in the same word, does count
  assert.notEqual(pageChecksum(page, 9), a);
  page[10] ^= 1;
  page[8] = before[8]!;
  page[9] = before[9]!;
  assert.deepEqual(page, before);
});

test('the result is in 1..65535', () => {
  for (let seed = 100; seed < 400; seed++) {
    const c = pageChecksum(makePage(seed), seed);
    assert.ok(c >= 1 && c <= 65535, String(c));
  }
});

test('pages at any byte offset, in shared or separate buffers, give the same checksum', () => {
  const page = makePage(5);
  const expected = referenceChecksum(page, 3);
  for (const offset of [0, 1, 2, 3, 4, 8192, 8193]) {
    const big = new Uint8Array(offset + 3 * PAGE_SIZE);
    big.set(page, offset);
    assert.equal(pageChecksum(big.subarray(offset, offset + PAGE_SIZE), 3), expected, `offset ${offset}`);
  }
  // Alternating buffers and a Node Buffer (pool slab at an arbitrary offset).
  const other = makePage(6);
  const otherExpected = referenceChecksum(other, 3);
  for (let i = 0; i < 3; i++) {
    assert.equal(pageChecksum(page, 3), expected);
    assert.equal(pageChecksum(Buffer.from(other), 3), otherExpected);
  }
  // A page at the end of a buffer whose length is not a multiple of 4.
  const odd = new Uint8Array(PAGE_SIZE + 6);
  odd.set(page, 4);
  assert.equal(pageChecksum(odd.subarray(4, 4 + PAGE_SIZE), 3), expected);
});

test('pageChecksum refuses a buffer that is not one page', () => {
  assert.throws(() => pageChecksum(new Uint8Array(PAGE_SIZE - 1), 0), { code: 'ERR_INTERNAL' });
  assert.throws(() => verifyPage(new Uint8Array(100), 0, 0n), { code: 'ERR_INTERNAL' });
});

test('header fields: pd_lsn, pd_checksum, PageIsNew', () => {
  const page = makePage(1, 0xabcdef01_23456789n, 0);
  assert.equal(pageLsn(page), 0xabcdef01_23456789n);
  page[8] = 0xcd;
  page[9] = 0xab;
  assert.equal(storedChecksum(page), 0xabcd);
  assert.equal(pageIsNew(page), true);
  page[15] = 1;
  assert.equal(pageIsNew(page), false);
});

test('verifyPage: new pages and pages changed since the backup started are skipped', () => {
  const start = 0x2_0000_0000n;
  // A new page is skipped whatever else it holds: all zeros, or garbage past pd_upper.
  assert.equal(verifyPage(new Uint8Array(PAGE_SIZE), 0, start), 'skipped');
  assert.equal(verifyPage(makePage(3, 0x1_0000_0000n, 0), 0, start), 'skipped');

  const page = makePage(4, 0x1_ffff_ffffn);
  const good = pageChecksum(page, 12);
  page[8] = good & 0xff;
  page[9] = good >> 8;
  assert.equal(verifyPage(page, 12, start), 'ok');
  assert.deepEqual(verifyPage(page, 13, start), { expected: good, calculated: pageChecksum(page, 13) });
  // LSN == start and LSN > start (in either half) are not checked, even with a wrong checksum.
  page[8] ^= 0xff;
  for (const lsn of [start, start + 1n, 0x3_0000_0000n, 0x1_ffff_ffffn]) {
    const dv = new DataView(page.buffer, page.byteOffset);
    dv.setUint32(0, Number(lsn >> 32n), true);
    dv.setUint32(4, Number(lsn & 0xffffffffn), true);
    const v = verifyPage(page, 12, start);
    if (lsn < start) assert.equal(typeof v, 'object', `LSN ${lsn.toString(16)}`);
    else assert.equal(v, 'skipped', `LSN ${lsn.toString(16)}`);
  }
  // Another start LSN right after (the cached split must follow it).
  assert.equal(typeof verifyPage(page, 12, 0x1_ffff_ffffn + 1n), 'object');
  assert.equal(verifyPage(page, 12, 0x1_ffff_ffffn), 'skipped');
});

test('blockNumberBase: segment number times RELSEG_SIZE', () => {
  assert.equal(RELSEG_SIZE, 131072);
  assert.equal(blockNumberBase('16384'), 0);
  assert.equal(blockNumberBase('16384_fsm'), 0);
  assert.equal(blockNumberBase('16384.1'), 131072);
  assert.equal(blockNumberBase('16384_vm.2'), 262144);
  assert.equal(blockNumberBase('base/5/16384.12'), 12 * 131072);
  assert.equal(blockNumberBase('pg_tblspc/16400/PG_15_202209061/5/16384.32767'), 32767 * 131072);
  // Only the leading digits count (the server's atoi).
  assert.equal(blockNumberBase('16384.1a'), 131072);
  for (const bad of ['16384.0', '16384.', '16384.x', '16384.32768', 'base/5/16384.00', 'base/5/.DS_Store', 'pg_internal.init']) {
    assert.throws(() => blockNumberBase(bad), { code: 'ERR_STORAGE' }, bad);
  }
});
