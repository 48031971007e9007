// Parses pg_basebackup's -Z/--compress value:
//   N (0-9: gzip level, 0 = none), none, [client-|server-]METHOD[:DETAIL]
// where DETAIL is a level number or "level=N,workers=N,long" (PostgreSQL 15+).

import { usageError } from '../common/errors.js';
import type { CompressionChoice, CompressionAlgorithmName } from '../backup/options.js';
import { levelRange } from '../storage/compress/levels.js';

export function parseCompressOption(value: string, gzipFlag: boolean): CompressionChoice | null {
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const level = Number(v);
    if (level > 9) throw usageError(`compression level ${level} of method "gzip" is out of range`, 'use a level from 0 to 9');
    return level === 0 ? null : { location: 'client', algorithm: 'gzip', level };
  }
  let rest = v;
  let location: 'client' | 'server' = 'client';
  if (rest.startsWith('client-')) rest = rest.slice(7);
  else if (rest.startsWith('server-')) {
    location = 'server';
    rest = rest.slice(7);
  }
  const colon = rest.indexOf(':');
  const method = colon < 0 ? rest : rest.slice(0, colon);
  const detail = colon < 0 ? undefined : rest.slice(colon + 1);
  if (method === 'none') {
    if (detail) throw usageError('compression method "none" does not accept a compression detail');
    return gzipFlag ? { location: 'client', algorithm: 'gzip' } : null;
  }
  if (method !== 'gzip' && method !== 'lz4' && method !== 'zstd') {
    throw usageError(`unrecognized compression algorithm "${method}"`, 'use none, gzip, lz4 or zstd, optionally prefixed by client- or server-');
  }
  const choice: CompressionChoice = { location, algorithm: method as CompressionAlgorithmName };
  if (detail !== undefined && detail !== '') {
    const range = levelRange(choice.algorithm);
    const parts = /^-?\d+$/.test(detail) ? [`level=${detail}`] : detail.split(',');
    for (const part of parts) {
      const [key, val] = part.split('=', 2) as [string, string | undefined];
      if (key === 'level') {
        const n = Number(val);
        if (!Number.isInteger(n) || n < range.min || n > range.max) {
          throw usageError(`compression level ${val} of method "${method}" is out of range`, `use a level from ${range.min} to ${range.max}`);
        }
        choice.level = n;
      } else if (key === 'workers') {
        if (method !== 'zstd') throw usageError(`compression algorithm "${method}" does not accept a worker count`);
        const n = Number(val);
        if (!Number.isInteger(n) || n < 0) throw usageError(`invalid worker count "${val}"`);
        choice.workers = n;
      } else if (key === 'long') {
        if (method !== 'zstd') throw usageError(`compression algorithm "${method}" does not support long-distance mode`);
        choice.long = val === undefined || val === 'on' || val === 'true' || val === '1';
      } else {
        throw usageError(`unrecognized compression option "${key}"`, 'compression details are level=N, workers=N (zstd) and long (zstd)');
      }
    }
    if (location === 'server') choice.detail = parts.join(',');
  }
  return choice;
}
