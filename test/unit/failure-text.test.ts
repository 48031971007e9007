// A failure as the spool keeps it (archiving/spool.ts): message, hint, and the code that gives
// archive_command the exit code a synchronous push would (9 for a store that kept failing, 3 for
// one out of reach), read back by the archive_command waiting on the pusher.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { failureText, parseFailureText } from '../../src/archiving/spool.js';
import { PgpitrError } from '../../src/common/errors.js';

test('failureText / parseFailureText: message, hint and code round trip; older texts have no code', () => {
  const e = new PgpitrError('ERR_CONNECTION_LOST', 'the store kept failing (HTTP 503)', { hint: 'see the store' });
  assert.deepEqual(parseFailureText(failureText(e)), { message: 'the store kept failing (HTTP 503)', hint: 'see the store', code: 'ERR_CONNECTION_LOST' });
  assert.deepEqual(parseFailureText(failureText(new PgpitrError('ERR_CONNECTION', 'unreachable'))), { message: 'unreachable', code: 'ERR_CONNECTION' });
  assert.deepEqual(parseFailureText('old text\nhint: do this'), { message: 'old text', hint: 'do this' });
  assert.deepEqual(parseFailureText(failureText({ message: 'plain' })), { message: 'plain' });
});
