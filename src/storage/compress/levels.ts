// Level ranges and file extensions of the compression methods, as PostgreSQL's
// compression specifications define them. No codec is loaded from here, so
// option parsing and the repository layout stay cheap to import.

import type { CompressionAlgorithm } from './common.js';
import { usageError } from '../../common/errors.js';

const RANGES: Record<CompressionAlgorithm, { min: number; max: number; default: number }> = {
  gzip: { min: 1, max: 9, default: 6 }, // zlib's Z_DEFAULT_COMPRESSION is 6
  lz4: { min: 1, max: 12, default: 1 }, // PostgreSQL's default 0 is lz4's fast mode, the same as 1
  zstd: { min: -131072, max: 22, default: 3 },
};

const EXTENSIONS: Record<CompressionAlgorithm, string> = { gzip: '.gz', lz4: '.lz4', zstd: '.zst' };

export function levelRange(algorithm: CompressionAlgorithm): { min: number; max: number; default: number } {
  return RANGES[algorithm] ?? unknown(algorithm);
}

export function compressionExtension(algorithm: CompressionAlgorithm): string {
  return EXTENSIONS[algorithm] ?? unknown(algorithm);
}

function unknown(algorithm: string): never {
  throw usageError(`unknown compression algorithm "${algorithm}"`, 'use gzip, lz4 or zstd');
}
