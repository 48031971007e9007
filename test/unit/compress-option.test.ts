// -Z/--compress is refused in pg_basebackup's words (PostgreSQL's
// src/common/compression.c), never with a JavaScript "undefined" in them.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { parseCompressOption } from '../../src/cli/compress-option.js';

function refusal(value: string): string {
  try {
    parseCompressOption(value, false);
  } catch (e) {
    return (e as Error).message;
  }
  return '(accepted)';
}

test('-Z refusals use PostgreSQL\'s messages', () => {
  const cases: [string, string][] = [
    ['gzip:42', 'invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)'],
    ['42', 'invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)'],
    ['gzip:level=0', 'invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)'],
    ['zstd:99', 'invalid compression specification: compression algorithm "zstd" expects a compression level between -131072 and 22 (default at 3)'],
    ['lz4:13', 'invalid compression specification: compression algorithm "lz4" expects a compression level between 1 and 12 (default at 0)'],
    ['brotli', 'unrecognized compression algorithm: "brotli"'],
    ['server-brotli:1', 'unrecognized compression algorithm: "brotli"'],
    ['gzip:', 'invalid compression specification: found empty string where a compression option was expected'],
    ['server-gzip:', 'invalid compression specification: found empty string where a compression option was expected'],
    ['zstd:,', 'invalid compression specification: found empty string where a compression option was expected'],
    ['gzip:level', 'invalid compression specification: compression option "level" requires a value'],
    ['server-gzip:level', 'invalid compression specification: compression option "level" requires a value'],
    ['gzip:level=x', 'invalid compression specification: value for compression option "level" must be an integer'],
    ['gzip:foo', 'invalid compression specification: unrecognized compression option: "foo"'],
    ['gzip:5x', 'invalid compression specification: unrecognized compression option: "5x"'],
    ['lz4:workers=2', 'invalid compression specification: compression algorithm "lz4" does not accept a worker count'],
    ['gzip:long', 'invalid compression specification: compression algorithm "gzip" does not support long-distance mode'],
    ['zstd:long=maybe', 'invalid compression specification: value for compression option "long" must be a Boolean value'],
    ['none:5', 'invalid compression specification: compression algorithm "none" does not accept a compression level'],
    ['client-none:1', 'invalid compression specification: compression algorithm "none" does not accept a compression level'],
  ];
  for (const [value, message] of cases) {
    const got = refusal(value);
    assert.equal(got, message, `-Z ${value}`);
    assert.doesNotMatch(got, /undefined/, `-Z ${value}`);
  }
});

test('-Z accepts what PostgreSQL accepts', () => {
  assert.deepEqual(parseCompressOption('gzip:-1', false), { location: 'client', algorithm: 'gzip' });
  assert.deepEqual(parseCompressOption('lz4:0', false), { location: 'client', algorithm: 'lz4' });
  assert.deepEqual(parseCompressOption('gzip:level=3,level=4', false), { location: 'client', algorithm: 'gzip', level: 4 });
  assert.deepEqual(parseCompressOption('server-zstd:level=-5,long=on', false), { location: 'server', algorithm: 'zstd', level: -5, long: true, detail: 'level=-5,long=on' });
  assert.deepEqual(parseCompressOption('server-gzip:5', false), { location: 'server', algorithm: 'gzip', level: 5, detail: '5' });
  assert.equal(parseCompressOption('none', false), null);
  assert.equal(parseCompressOption('0', false), null);
});
