// Streaming compression for backups: gzip, lz4 and zstd as stream.Transform objects,
// for client-side compressed tar archives and for reading archives a PostgreSQL 15+
// server compressed (one long frame arriving in arbitrary chunks).
//
// Why these implementations (npm 11 blocks dependencies' install scripts, so every
// dependency here ships prebuilt code or is pure JS/WASM; checked 2026-11):
// - gzip: Node's zlib, native and the same library pg_basebackup links.
// - lz4: the system's liblz4 through koffi (FFI with prebuilt binaries, MIT,
//   releases through 2026), the library pg_basebackup itself uses; lz4-napi
//   (napi-rs prebuilt, ~150k downloads a month) where liblz4 is absent. Neither
//   decodes an lz4 frame as it streams, so decoding is our own (lz4.ts, lz4-block.ts).
// - zstd: the system's libzstd through koffi compresses blocks in parallel at
//   the level asked for; @mongodb-js/zstd 1.x (native, prebuilt via
//   optionalDependencies) where libzstd is absent, whose wrapper ignores the level
//   (always 3); fzstd (pure JS streaming decoder by the author of fflate, ~400k
//   downloads a month) decodes streams.
//   Rejected: zstd-napi, @mongodb-js/zstd >= 2, lz4 (node-lz4) need their install
//   scripts to build; @toondepauw/node-zstd is one-shot only; zstd-codec ships an
//   old zstd. Node >= 22.15 has zstd in zlib, but pgpitr supports Node 20.

import type { Transform } from 'node:stream';
import { usageError } from '../../common/errors.js';
import type { CompressionAlgorithm } from './common.js';
import { levelRange } from './levels.js';
import { createGzipCompressor, createGzipDecompressor } from './gzip.js';
import { createLz4Compressor, createLz4Decompressor } from './lz4.js';
import { createZstdCompressor, createZstdDecompressor } from './zstd.js';
import { nativeLz4 } from './lz4-native.js';
import { nativeZstd } from './zstd-native.js';

export type { CompressionAlgorithm, CompressionErrorCode } from './common.js';
export { CompressionError } from './common.js';

export interface CompressionSpec {
  algorithm: CompressionAlgorithm;
  /** Within levelRange(algorithm); default levelRange(algorithm).default. lz4 also takes 0 (= PostgreSQL's default fast mode, same as 1). */
  level?: number;
  /** > 1: compress blocks in parallel (independent gzip members / lz4 or zstd frames). Default 1. */
  workers?: number;
  /** zstd only: long-distance matching with a 128 MiB window, as PostgreSQL's `long`. */
  long?: boolean;
}

const DEFAULT_WORKERS = 2;

export { levelRange, compressionExtension } from './levels.js';

/**
 * Loads the native library compressing with `algorithm` needs (liblz4, libzstd:
 * ~10 ms), so that a caller can have it done while it waits anyway (a backup,
 * while the server runs its checkpoint) rather than when data arrives.
 */
export function prepareCompressor(algorithm: CompressionAlgorithm): void {
  if (algorithm === 'lz4') nativeLz4();
  else if (algorithm === 'zstd') nativeZstd();
}

export function createCompressor(spec: CompressionSpec): Transform {
  const { algorithm } = spec;
  const range = levelRange(algorithm);
  const level = spec.level ?? range.default;
  const lz4Default = algorithm === 'lz4' && level === 0;
  if (!Number.isInteger(level) || ((level < range.min || level > range.max) && !lz4Default)) {
    throw usageError(
      `compression algorithm "${algorithm}" expects a compression level between ${range.min} and ${range.max}`,
    );
  }
  // Client-side compression runs in parallel blocks by default (two at a time): the
  // client has the CPU for it and it is what lets us finish before pg_basebackup.
  const workers = spec.workers ?? DEFAULT_WORKERS;
  if (!Number.isInteger(workers) || workers < 0) {
    throw usageError(`compression option "workers" expects a non-negative integer, got ${workers}`);
  }
  if (spec.long && algorithm !== 'zstd') {
    throw usageError(`compression algorithm "${algorithm}" does not support long-distance mode`);
  }
  switch (algorithm) {
    case 'gzip':
      return createGzipCompressor(level, workers);
    case 'lz4':
      return createLz4Compressor(level, workers);
    case 'zstd':
      if (spec.long) throw usageError('client-side zstd does not support long-distance mode', 'use server-side compression (-Z server-zstd:long) on PostgreSQL 15+');
      return createZstdCompressor(level, workers);
  }
  return unknownAlgorithm(algorithm);
}

/** Decodes one stream, or several concatenated gzip members / lz4 or zstd frames; rejects truncated input. */
export function createDecompressor(algorithm: CompressionAlgorithm): Transform {
  switch (algorithm) {
    case 'gzip':
      return createGzipDecompressor();
    case 'lz4':
      return createLz4Decompressor();
    case 'zstd':
      return createZstdDecompressor();
  }
  return unknownAlgorithm(algorithm);
}

function unknownAlgorithm(algorithm: never): never {
  throw usageError(`unrecognized compression algorithm: "${String(algorithm)}"`);
}
