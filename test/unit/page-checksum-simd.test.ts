// The WebAssembly SIMD page checksum against the scalar code (itself checked
// against a byte-by-byte reading of checksum_impl.h in page-checksum.test.ts and
// against real servers' pages in the integration tests): random pages, every
// kind of placement (in an arena, outside it, at odd offsets), block numbers
// across the 32-bit range; and the arenas' bounds.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { PAGE_SIZE, pageChecksum, pageChecksumScalar } from '../../src/postgres/page-checksum.js';
import { pageArena, simdAvailable, simdBlockSum } from '../../src/postgres/page-checksum-simd.js';

function randomPage(seed: number): Buffer {
  const p = Buffer.allocUnsafe(PAGE_SIZE);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < PAGE_SIZE; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    p[i] = x & 0xff;
  }
  return p;
}

test('this runtime has WebAssembly SIMD (Node 20 on x86-64 and arm64 do)', () => {
  assert.equal(simdAvailable(), true);
});

test('SIMD and scalar checksums agree on random pages, inside and outside an arena', () => {
  const arena = pageArena(4 * PAGE_SIZE);
  assert.ok(arena);
  const blocks = [0, 1, 7, 131071, 131072, 0x7fffffff, 0xfffffffe];
  for (let seed = 1; seed <= 200; seed++) {
    const page = randomPage(seed * 2654435761);
    const block = blocks[seed % blocks.length]! + seed;
    const expected = pageChecksumScalar(page, block >>> 0);
    assert.equal(pageChecksum(page, block >>> 0), expected, `seed ${seed}, outside`);
    const slot: Buffer = arena.subarray((seed % 4) * PAGE_SIZE, (seed % 4 + 1) * PAGE_SIZE);
    page.copy(slot);
    assert.equal(pageChecksum(slot, block >>> 0), expected, `seed ${seed}, in the arena`);
  }
});

test('the stored checksum field does not count; every other byte does', () => {
  const page = randomPage(99);
  const base = simdBlockSum(page);
  page[8] ^= 0xff;
  page[9] ^= 0x5a;
  assert.equal(simdBlockSum(page), base);
  for (const at of [0, 7, 10, 11, 127, 128, 4096, PAGE_SIZE - 1]) {
    const q = Buffer.from(page);
    q[at] ^= 1;
    assert.notEqual(simdBlockSum(q), base, `byte ${at}`);
    assert.equal(pageChecksum(q, 3), pageChecksumScalar(q, 3), `byte ${at}`);
  }
});

test('pages at odd offsets of a larger buffer are read correctly', () => {
  const big = Buffer.alloc(PAGE_SIZE + 3);
  randomPage(5).copy(big, 3);
  const page = big.subarray(3);
  assert.equal(pageChecksum(page, 42), pageChecksumScalar(page, 42));
});

test('arenas are carved without overlap and refused once used up', () => {
  const a = pageArena(PAGE_SIZE)!;
  const b = pageArena(PAGE_SIZE)!;
  a.fill(1);
  b.fill(2);
  assert.ok(a.every((v) => v === 1));
  assert.equal(pageArena(64 * 1024 * 1024), null);
});
