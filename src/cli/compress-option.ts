// Parses pg_basebackup's -Z/--compress value:
//   N (0: none, else a gzip level), none, [client-|server-]ALGORITHM[:DETAIL]
// where DETAIL is PostgreSQL's compression specification (src/postgres/compress-spec.ts).
// Errors use pg_basebackup's words: scripts may match them.

import { usageError } from '../common/errors.js';
import type { CompressionChoice } from '../backup/options.js';
import { isSpecAlgorithm, parseCompressSpec } from '../postgres/compress-spec.js';

const HINT = 'see "pgpitr basebackup --help": -Z [client-|server-]{gzip|lz4|zstd|none}[:level=N,workers=N,long]';

export function parseCompressOption(value: string, gzipFlag: boolean, defaultLocation: 'client' | 'server' = 'client'): CompressionChoice | null {
  let rest = value;
  // Not given: the client, or with a backup target (-t) the server, as pg_basebackup decides.
  let location: 'client' | 'server' = defaultLocation;
  if (rest.startsWith('server-')) {
    location = 'server';
    rest = rest.slice(7);
  } else if (rest.startsWith('client-')) {
    location = 'client';
    rest = rest.slice(7);
  }

  let algorithm: string;
  let detail: string | null;
  if (/^\s*[+-]?\d+$/.test(rest)) {
    // A bare integer: 0 means none, anything else a gzip level (PostgreSQL 16+).
    algorithm = Number(rest) === 0 ? 'none' : 'gzip';
    detail = Number(rest) === 0 ? null : rest;
  } else {
    const colon = rest.indexOf(':');
    algorithm = colon < 0 ? rest : rest.slice(0, colon);
    detail = colon < 0 ? null : rest.slice(colon + 1);
  }
  if (!isSpecAlgorithm(algorithm)) throw usageError(`unrecognized compression algorithm: "${algorithm}"`, HINT);
  const spec = parseCompressSpec(algorithm, detail);
  if (typeof spec === 'string') throw usageError(`invalid compression specification: ${spec}`, HINT);
  if (spec.algorithm === 'none') return gzipFlag ? { location: defaultLocation, algorithm: 'gzip' } : null;

  const choice: CompressionChoice = { location, algorithm: spec.algorithm };
  if (spec.level !== undefined) choice.level = spec.level;
  if (spec.workers !== undefined) {
    if (spec.workers < 0) throw usageError(`invalid compression specification: compression worker count ${spec.workers} is negative`, HINT);
    choice.workers = spec.workers;
  }
  if (spec.long !== undefined) choice.long = spec.long;
  if (location === 'server' && detail !== null) choice.detail = detail;
  return choice;
}
