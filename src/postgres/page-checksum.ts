// Data page checksums as PostgreSQL computes them (pg_checksum_page in
// src/include/storage/checksum_impl.h) and the rule BASE_BACKUP uses to decide
// which pages to verify. Pure: no I/O, no allocation per page. Assumes 8 kB
// pages (BLCKSZ 8192) and 1 GB segments (RELSEG_SIZE 131072 blocks), the
// defaults every supported packaging uses.

import { PgpitrError } from '../common/errors.js';
import { simdBlockSum } from './page-checksum-simd.js';

export const PAGE_SIZE = 8192;
/** Blocks per relation segment file (RELSEG_SIZE for 1 GB segments of 8 kB pages). */
export const RELSEG_SIZE = 131072;

const N_SUMS = 32; // lanes: a fixed part of the algorithm
const WORDS = PAGE_SIZE / 4;
const FNV_PRIME = 16777619;

// Each lane's starting value (checksumBaseOffsets in checksum_impl.h).
const BASE_OFFSETS = new Uint32Array([
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
]);

// The algorithm reads the page as native uint32 words; PostgreSQL on x86/ARM is
// little-endian, and so must we be to read its pages as words. (Checked when
// used, so that importing this module never fails.)
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Preallocated: a word-aligned copy for pages at odd offsets (Buffers from a
// pool can start anywhere).
const scratch = new Uint8Array(PAGE_SIZE);
const scratchWords = new Uint32Array(scratch.buffer);

function checkPageSize(page: Uint8Array): void {
  if (!LITTLE_ENDIAN) throw new PgpitrError('ERR_UNSUPPORTED', 'page checksums need a little-endian host');
  if (page.length !== PAGE_SIZE) {
    throw new PgpitrError('ERR_INTERNAL', `a data page must be ${PAGE_SIZE} bytes, got ${page.length}`);
  }
}

// A word view over the page's whole ArrayBuffer, kept while pages keep coming
// from the same buffer (a read buffer or Buffer pool slab), so a page costs no
// allocation; `wordBase` is the page's first word in it.
let viewBuffer: ArrayBufferLike | undefined;
let viewWords: Uint32Array = scratchWords;
let wordBase = 0;

function wordsOf(page: Uint8Array): Uint32Array {
  if ((page.byteOffset & 3) !== 0) {
    scratch.set(page);
    wordBase = 0;
    return scratchWords;
  }
  if (page.buffer !== viewBuffer || page.byteOffset + PAGE_SIZE > viewWords.length * 4) {
    viewBuffer = page.buffer;
    viewWords = new Uint32Array(page.buffer, 0, page.buffer.byteLength >>> 2);
  }
  wordBase = page.byteOffset >>> 2;
  return viewWords;
}

/**
 * pg_checksum_page: the 16-bit checksum PostgreSQL stores in pd_checksum for
 * this page at this block number (the block number within the relation, not
 * within the segment file: see blockNumberBase). The stored pd_checksum is
 * taken as zero; the page is not modified.
 */
export function pageChecksum(page: Uint8Array, blockNo: number): number {
  checkPageSize(page);
  // WebAssembly SIMD (page-checksum-simd.ts) when the runtime has it: 4 lanes per instruction.
  const sum = simdBlockSum(page);
  if (sum === null) return pageChecksumScalar(page, blockNo);
  return (((sum ^ blockNo) >>> 0) % 65535) + 1;
}

/** pageChecksum in plain JavaScript: the reference for the SIMD code, and the fallback without it. */
export function pageChecksumScalar(page: Uint8Array, blockNo: number): number {
  checkPageSize(page);
  const w = wordsOf(page);
  const first = wordBase;
  const end = first + WORDS;
  // Lanes are independent: four at a time in locals, down the page's rows,
  // keeps the state in registers and four multiplications in flight.
  let result = 0;
  for (let j = 0; j < N_SUMS; j += 4) {
    let a = BASE_OFFSETS[j]! | 0;
    let b = BASE_OFFSETS[j + 1]! | 0;
    let c = BASE_OFFSETS[j + 2]! | 0;
    let d = BASE_OFFSETS[j + 3]! | 0;
    // Row 0: word 2 holds pd_checksum (its low half, little-endian), counted as zero.
    let t = a ^ w[first + j]!;
    a = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = b ^ w[first + j + 1]!;
    b = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = c ^ (j === 0 ? w[first + 2]! & 0xffff0000 : w[first + j + 2]!);
    c = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    t = d ^ w[first + j + 3]!;
    d = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    for (let i = first + N_SUMS + j; i < end; i += N_SUMS) {
      t = a ^ w[i]!;
      a = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = b ^ w[i + 1]!;
      b = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = c ^ w[i + 2]!;
      c = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
      t = d ^ w[i + 3]!;
      d = Math.imul(t, FNV_PRIME) ^ (t >>> 17);
    }
    // Two rounds of zeros mix the last row's bits, then the lanes fold by xor.
    for (let r = 0; r < 2; r++) {
      a = Math.imul(a, FNV_PRIME) ^ (a >>> 17);
      b = Math.imul(b, FNV_PRIME) ^ (b >>> 17);
      c = Math.imul(c, FNV_PRIME) ^ (c >>> 17);
      d = Math.imul(d, FNV_PRIME) ^ (d >>> 17);
    }
    result ^= a ^ b ^ c ^ d;
  }
  result = (result ^ blockNo) >>> 0;
  // Offset by one so a checksum is never zero.
  return (result % 65535) + 1;
}

/** pd_lsn: the LSN of the last WAL record that changed the page (xlogid << 32 | xrecoff). */
export function pageLsn(page: Uint8Array): bigint {
  return (BigInt(readU32(page, 0)) << 32n) | BigInt(readU32(page, 4));
}

/** PageIsNew: pd_upper is zero, the page was never initialised (and has no checksum yet). */
export function pageIsNew(page: Uint8Array): boolean {
  return page[14] === 0 && page[15] === 0;
}

/** pd_checksum, the uint16 at offset 8. */
export function storedChecksum(page: Uint8Array): number {
  return page[8]! | (page[9]! << 8);
}

export type PageVerdict = 'ok' | 'skipped' | { expected: number; calculated: number };

// The start LSN split into halves, cached: one backup calls verifyPage with
// the same start LSN for every page, and the comparison then needs no BigInt.
let cachedLsn: bigint | undefined;
let startHi = 0;
let startLo = 0;

/**
 * What BASE_BACKUP concludes about one page (the same in 13-18: sendFile in
 * 13-16, verify_page_checksum in 17-18): a new page (pd_upper == 0, whatever
 * its other bytes, all zero or not) and a page whose LSN is at or after the
 * backup's start LSN are not checked ('skipped': a page being written may be
 * torn, and WAL replay rewrites it). Otherwise 'ok' or the mismatch, with
 * `expected` the stored pd_checksum and `calculated` ours (the server's
 * warning: "calculated %X but expected %X"). The server rereads a failing
 * block once before counting it; that is the caller's I/O to do.
 */
export function verifyPage(page: Uint8Array, blockNo: number, startLsn: bigint): PageVerdict {
  checkPageSize(page);
  if (pageIsNew(page)) return 'skipped';
  if (startLsn !== cachedLsn) {
    cachedLsn = startLsn;
    startHi = Number(startLsn >> 32n);
    startLo = Number(startLsn & 0xffffffffn);
  }
  const hi = readU32(page, 0);
  if (hi > startHi || (hi === startHi && readU32(page, 4) >= startLo)) return 'skipped';
  const calculated = pageChecksum(page, blockNo);
  const expected = storedChecksum(page);
  return calculated === expected ? 'ok' : { expected, calculated };
}

/**
 * The block number of a segment file's first page, as the server mixes it into
 * the checksum: the number after the first "." of the file name ("16384.3",
 * "16384_vm.1") times RELSEG_SIZE; 0 without a ".". Like the server (atoi of
 * what follows the dot) only the leading digits count, and a checksummed file
 * whose suffix reads as zero is an error there ("invalid segment number 0",
 * e.g. base/<db>/.DS_Store on 13-14) and here.
 */
export function blockNumberBase(fileName: string): number {
  const slash = fileName.lastIndexOf('/');
  const name = slash >= 0 ? fileName.slice(slash + 1) : fileName;
  const dot = name.indexOf('.');
  if (dot < 0) return 0;
  const digits = /^[0-9]*/.exec(name.slice(dot + 1))![0];
  const segNo = digits === '' ? 0 : Number(digits);
  // A relation has at most 2^32 - 1 blocks, so at most 32768 segments.
  if (segNo === 0 || segNo * RELSEG_SIZE > 0xffffffff) {
    throw new PgpitrError('ERR_STORAGE', `invalid segment number ${digits === '' ? 0 : digits} in file "${fileName}"`);
  }
  return segNo * RELSEG_SIZE;
}

function readU32(page: Uint8Array, at: number): number {
  return (page[at]! | (page[at + 1]! << 8) | (page[at + 2]! << 16) | (page[at + 3]! << 24)) >>> 0;
}
