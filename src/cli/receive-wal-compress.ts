// receive-wal's -Z/--compress, as pg_receivewal 15+ reads it: METHOD[:DETAIL]
// with METHOD none, gzip or lz4 and DETAIL a level (N or level=N), or a bare
// number (0: none, 1-9: gzip at that level, pg_receivewal's older syntax).
// pg_receivewal writes no zstd, and no client-/server- prefix applies to it.

import { usageError } from '../common/errors.js';
import { parseCompressOption } from './compress-option.js';
import type { WriterCompression } from '../wal/segment-writer.js';

export function parseReceiveWalCompress(value: string): WriterCompression | null {
  const v = value.trim();
  if (/^(client|server)-/.test(v)) {
    throw usageError(`unrecognized compression algorithm: "${v.split(':')[0]}"`, 'receive-wal takes -Z none, gzip or lz4, optionally with :LEVEL');
  }
  const choice = parseCompressOption(v, false);
  if (choice === null) return null;
  if (choice.algorithm === 'zstd') {
    throw usageError('compression with zstd is not supported by receive-wal', 'use -Z gzip or -Z lz4, as pg_receivewal; in repository mode (--repo) segments are stored with compress-type, zstd by default');
  }
  if (choice.workers !== undefined) throw usageError(`compression algorithm "${choice.algorithm}" does not accept a worker count`);
  return { algorithm: choice.algorithm, level: choice.level };
}
