// Compression for threads that must not wait on the event loop (a parallel
// backup's readers): synchronous calls that write the same frames as the
// streaming compressors (storage/compress/index.ts) — lz4 frames of one
// independent 256 KiB block each, zstd frames of 1 MiB that record their size,
// gzip members — so that whatever reads one reads the other, and restore's
// copier threads decode them (sync-decoder.ts). null where no synchronous path
// exists here (liblz4 or libzstd missing, lz4's high-compression levels): the
// caller then compresses on the main thread's streams.

import { gzipSync } from 'node:zlib';
import { nativeLz4 } from './lz4-native.js';
import { nativeZstd } from './zstd-native.js';
import { BLOCK as LZ4_BLOCK, END_MARK, FRAME_HEADER } from './lz4.js';
import { levelRange } from './levels.js';
import type { CompressionAlgorithm } from './common.js';

export interface SyncEncoder {
  /** The most bytes encode() writes for `size` bytes of input. */
  bound(size: number): number;
  /** Encodes `src` (any length) into `dst` from `at`; returns the bytes written. */
  encode(src: Buffer, dst: Buffer, at: number): number;
}

/** Where encodeToFit() encodes, reused by the thread's calls (each thread has its own module). */
let scratch = Buffer.allocUnsafeSlow(0);

/**
 * `src` encoded into a buffer of exactly the encoded size, with an ArrayBuffer of its own (it may
 * be transferred to another thread): a worst-case buffer per call, kept or transferred, is
 * external memory that must be collected, and a view of one holds all of it alive.
 */
export function encodeToFit(encoder: SyncEncoder, src: Buffer): Buffer {
  const need = encoder.bound(src.length);
  if (scratch.length < need) scratch = Buffer.allocUnsafeSlow(need);
  const n = encoder.encode(src, scratch, 0);
  const out = Buffer.allocUnsafeSlow(n);
  scratch.copy(out, 0, 0, n);
  return out;
}

const ZSTD_BLOCK = 1 << 20;
const GZIP_BLOCK = 1 << 20;

export function syncEncoder(algorithm: CompressionAlgorithm, level?: number): SyncEncoder | null {
  const lvl = level ?? levelRange(algorithm).default;
  switch (algorithm) {
    case 'lz4':
      return lz4Encoder(lvl);
    case 'zstd':
      return zstdEncoder(lvl);
    case 'gzip':
      return gzipEncoder(lvl);
  }
}

function blocks(size: number, block: number): number {
  return Math.max(1, Math.ceil(size / block));
}

function lz4Encoder(level: number): SyncEncoder | null {
  const lib = nativeLz4();
  if (!lib || !lib.synchronous(level)) return null;
  const overhead = FRAME_HEADER.length + 4 + END_MARK.length;
  return {
    bound: (size) => blocks(size, LZ4_BLOCK) * (overhead + lib.compressBound(LZ4_BLOCK)),
    encode(src, dst, at) {
      const start = at;
      for (let off = 0; off < src.length; off += LZ4_BLOCK) {
        const block = src.subarray(off, Math.min(src.length, off + LZ4_BLOCK));
        FRAME_HEADER.copy(dst, at);
        const data = at + FRAME_HEADER.length + 4;
        let n = lib.compress(block, dst.subarray(data, data + lib.compressBound(block.length)), level) as number;
        if (n <= 0 || n >= block.length) {
          // Stored as is, as the streaming compressor does when lz4 gains nothing.
          block.copy(dst, data);
          n = block.length;
          dst.writeUInt32LE((n | 0x80000000) >>> 0, data - 4);
        } else dst.writeUInt32LE(n, data - 4);
        END_MARK.copy(dst, data + n);
        at = data + n + END_MARK.length;
      }
      return at - start;
    },
  };
}

function zstdEncoder(level: number): SyncEncoder | null {
  const lib = nativeZstd();
  if (!lib) return null;
  return {
    bound: (size) => blocks(size, ZSTD_BLOCK) * lib.compressBound(ZSTD_BLOCK),
    encode(src, dst, at) {
      const start = at;
      for (let off = 0; off < src.length || off === 0; off += ZSTD_BLOCK) {
        const block = src.subarray(off, Math.min(src.length, off + ZSTD_BLOCK));
        at += lib.compressInto(block, dst.subarray(at, at + lib.compressBound(block.length)), level);
        if (src.length === 0) break;
      }
      return at - start;
    },
  };
}

function gzipEncoder(level: number): SyncEncoder {
  return {
    // zlib's bound for one member, generously: stored blocks add 5 bytes per 16 KiB, plus header and trailer.
    bound: (size) => blocks(size, GZIP_BLOCK) * (GZIP_BLOCK + Math.ceil(GZIP_BLOCK / 16384) * 5 + 64),
    encode(src, dst, at) {
      const start = at;
      for (let off = 0; off < src.length || off === 0; off += GZIP_BLOCK) {
        const out = gzipSync(src.subarray(off, Math.min(src.length, off + GZIP_BLOCK)), { level });
        out.copy(dst, at);
        at += out.length;
        if (src.length === 0) break;
      }
      return at - start;
    },
  };
}
