// LZ4 block decoding (the sequence format of lz4's doc/lz4_Block_format.md),
// written here so that a frame from a PostgreSQL server can be decoded as it
// streams, linked blocks included: matches may reach into the 64 KiB of output
// that precede the block (placed in `dst` before `dstStart` by the caller).

import { corrupt } from './common.js';

const MIN_MATCH = 4;

/** Decodes src[start, end) into dst from dstStart; returns the end of the output. */
export function decodeLz4Block(src: Uint8Array, start: number, end: number, dst: Uint8Array, dstStart: number, dstLimit: number): number {
  let ip = start;
  let op = dstStart;
  for (;;) {
    if (ip >= end) throw corrupt('lz4', 'block ends before its last sequence');
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) throw corrupt('lz4', 'truncated literal length');
        b = src[ip++]!;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > end || op + lit > dstLimit) throw corrupt('lz4', 'literals run past the block');
    if (lit < 32) {
      for (let i = 0; i < lit; i++) dst[op + i] = src[ip + i]!;
    } else {
      dst.set(src.subarray(ip, ip + lit), op);
    }
    ip += lit;
    op += lit;
    if (ip === end) return op; // the last sequence has literals only
    if (ip + 2 > end) throw corrupt('lz4', 'truncated match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw corrupt('lz4', 'match offset points before the available history');
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= end) throw corrupt('lz4', 'truncated match length');
        b = src[ip++]!;
        len += b;
      } while (b === 255);
    }
    len += MIN_MATCH;
    if (op + len > dstLimit) throw corrupt('lz4', 'match runs past the block size');
    const from = op - offset;
    if (offset >= len && len >= 32) {
      dst.copyWithin(op, from, from + len);
    } else {
      // Overlapping matches repeat the last `offset` bytes: copy forward one byte at a time.
      for (let i = 0; i < len; i++) dst[op + i] = dst[from + i]!;
    }
    op += len;
  }
}
