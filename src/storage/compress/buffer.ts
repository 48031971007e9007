// Whole-buffer compression for small files (WAL segments, history files): the
// native one-shot calls where there is one, each codec loaded only when used,
// because archive-push and archive-get start once per WAL file.

import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { corrupt } from './common.js';
import type { CompressionAlgorithm } from './common.js';
import { levelRange } from './levels.js';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

export async function compressBuffer(algorithm: CompressionAlgorithm, data: Buffer, level?: number): Promise<Buffer> {
  const lvl = level ?? levelRange(algorithm).default;
  switch (algorithm) {
    case 'gzip':
      return gzip(data, { level: lvl });
    case 'zstd':
      return (await import('./zstd.js')).compressFrame(data, lvl);
    case 'lz4': {
      // liblz4's fast levels: one synchronous call writing the streaming compressor's frames,
      // without a stream per buffer (a repository backup calls this for each small file).
      const { syncEncoder, encodeToFit } = await import('./sync-encoder.js');
      const encoder = syncEncoder('lz4', lvl);
      if (encoder !== null) return encodeToFit(encoder, data);
      const { createLz4Compressor } = await import('./lz4.js');
      return collect(Readable.from([data], { objectMode: false }).pipe(createLz4Compressor(lvl)));
    }
  }
}

export async function decompressBuffer(algorithm: CompressionAlgorithm, data: Buffer): Promise<Buffer> {
  try {
    switch (algorithm) {
      case 'gzip':
        return await gunzip(data);
      case 'zstd':
        // Native and multi-frame: zstd's decoder reads concatenated frames as one stream.
        return await (await import('./zstd.js')).decompressFrames(data);
      case 'lz4': {
        const { createLz4Decompressor } = await import('./lz4.js');
        return await collect(Readable.from([data], { objectMode: false }).pipe(createLz4Decompressor()));
      }
    }
  } catch (e) {
    throw corrupt(algorithm, (e as Error).message, e);
  }
}
