// Whole-buffer compression for small files (WAL segments, history files): one
// call in, one buffer out, through the same codecs as the streams.

import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { createCompressor, createDecompressor } from './index.js';
import type { CompressionAlgorithm } from './common.js';

export async function compressBuffer(algorithm: CompressionAlgorithm, data: Buffer, level?: number): Promise<Buffer> {
  return collect(Readable.from([data], { objectMode: false }).pipe(createCompressor({ algorithm, ...(level !== undefined ? { level } : {}) })));
}

export async function decompressBuffer(algorithm: CompressionAlgorithm, data: Buffer): Promise<Buffer> {
  return collect(Readable.from([data], { objectMode: false }).pipe(createDecompressor(algorithm)));
}
