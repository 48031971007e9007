// Compression as a filter, in either direction, through the codecs of
// storage/compress (gzip, lz4, zstd), loaded only when used.

import type { Filter } from './filter.js';
import type { CompressionAlgorithm } from '../compress/common.js';
import { createCompressor, createDecompressor } from '../compress/index.js';

export function compressFilter(algorithm: CompressionAlgorithm, level?: number): Filter {
  const stream = createCompressor({ algorithm, ...(level === undefined ? {} : { level }), workers: 1 });
  return { name: 'compress', stream, result: () => ({ algorithm, ...(level === undefined ? {} : { level }) }) };
}

export function decompressFilter(algorithm: CompressionAlgorithm): Filter {
  return { name: 'decompress', stream: createDecompressor(algorithm), result: () => ({ algorithm }) };
}
