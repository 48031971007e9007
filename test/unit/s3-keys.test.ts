// A listing's pages: a store that says more keys follow must say from where, and move on.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { nextPage } from '../../src/storage/s3/s3-keys.js';

const what = () => 's3://bucket/stanza/archive/0000000100000000';

test('nextPage: the token of the next page, none after the last', () => {
  assert.equal(nextPage(true, undefined, 't1', what), 't1');
  assert.equal(nextPage(true, 't1', 't2', what), 't2');
  assert.equal(nextPage(false, 't2', undefined, what), undefined);
  assert.equal(nextPage(undefined, 't2', 't3', what), undefined);
});

test('nextPage: a truncated page without a token, or with the same token again, is an error naming the listing (never a listing silently cut short, never an endless one)', () => {
  assert.throws(() => nextPage(true, 't1', undefined, what), /listing of s3:\/\/bucket\/stanza\/archive\/0000000100000000 was cut short.*no continuation token/);
  assert.throws(() => nextPage(true, 't1', '', what), /no continuation token/);
  assert.throws(() => nextPage(true, 't1', 't1', what), /the same continuation token again/);
});
