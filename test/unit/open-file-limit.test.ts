// -j against the open-file limit (open-file-limit.ts): the soft limit read from
// /proc/self/limits, and the refusal (a usage error naming the limit and the -j that fits).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { checkOpenFileLimit, openFileLimit, FILES_PER_READER, MAIN_THREAD_RESERVE } from '../../src/backup/parallel/open-file-limit.js';
import { PgpitrError } from '../../src/common/errors.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
`;

test('the soft limit of open files', () => {
  assert.equal(openFileLimit(LIMITS), 1024);
  assert.equal(openFileLimit(LIMITS.replace('1024 ', 'unlimited ')), null);
  assert.equal(openFileLimit('nothing here'), null);
  const here = openFileLimit();
  assert.ok(here === null || here > 0);
});

test('-j within the limit passes, beyond it is a usage error naming the limit and the fix', () => {
  const inUse = 20;
  const fits = Math.floor((64 - inUse - MAIN_THREAD_RESERVE) / FILES_PER_READER);
  checkOpenFileLimit(fits, 64, inUse);
  checkOpenFileLimit(64, null, inUse); // no limit known: nothing to check
  assert.throws(
    () => checkOpenFileLimit(fits + 1, 64, inUse),
    (e: unknown) => e instanceof PgpitrError && e.code === 'ERR_USAGE' && /open-file limit of 64/.test(e.message) && new RegExp(`-j ${fits} or less`).test(e.hint ?? ''),
  );
  assert.throws(() => checkOpenFileLimit(1, 40, inUse), (e: unknown) => e instanceof PgpitrError && /ulimit -n/.test(e.hint ?? '') && !/or less/.test(e.hint ?? ''));
});
