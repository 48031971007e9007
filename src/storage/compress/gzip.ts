// gzip streams on Node's built-in zlib (native, same library pg_basebackup uses).
// With workers > 1 the input is compressed in 1 MiB blocks on libuv's thread
// pool and written as concatenated gzip members (valid gzip: `gzip -d`, zlib's
// gzread in PostgreSQL tools and our decompressor read them as one stream).

import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { Transform } from 'node:stream';
import { CompressionError, corrupt, mapStreamErrors } from './common.js';
import { ParallelBlockTransform } from './parallel.js';

const CHUNK = 128 * 1024;
const PARALLEL_BLOCK = 1 << 20;
const gzipAsync = promisify(zlib.gzip) as (buf: Buffer, options: zlib.ZlibOptions) => Promise<Buffer>;

export function createGzipCompressor(level: number, workers: number): Transform {
  if (workers > 1) {
    return new ParallelBlockTransform(
      (block) =>
        gzipAsync(block, { level }).then(
          (out) => ({ out }),
          (e: Error) => Promise.reject(new CompressionError('ERR_COMPRESSION_FAILED', 'gzip', e.message, e)),
        ),
      PARALLEL_BLOCK,
      workers * 2,
    );
  }
  return mapStreamErrors(
    zlib.createGzip({ level, chunkSize: CHUNK }),
    (e) => new CompressionError('ERR_COMPRESSION_FAILED', 'gzip', e.message, e),
  );
}

/** Reads one gzip member or several concatenated ones. */
export function createGzipDecompressor(): Transform {
  return mapStreamErrors(zlib.createGunzip({ chunkSize: CHUNK }), (e) =>
    corrupt('gzip', e.message === 'unexpected end of file' ? 'unexpected end of input' : e.message, e),
  );
}
