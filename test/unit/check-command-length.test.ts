// check fails an archive_command that PostgreSQL 15 and older would cut at 1023 bytes once %p and
// %f are replaced (black-box run X: the asynchronous form with long paths lost its end, check said ok).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { cutByServer } from '../../src/commands/check-command-length.js';

test('the command\'s length with %p and %f replaced, judged for servers before 16 only', () => {
  const long = `pgpitr-spool-wait /var/spool/${'x'.repeat(500)}/main/archive-push %f || pgpitr archive-push --archive-async --spool-path /var/spool/${'x'.repeat(500)} --stanza main %p`;
  const n = cutByServer(long, 150018);
  assert.equal(n, long.length - 4 + 31 + 24);
  assert.equal(cutByServer(long, 160004), null);
  assert.equal(cutByServer('pgpitr archive-push --stanza main %p', 150018), null);
  // 1023 bytes once replaced fit; 1024 do not. %% is one byte; multibyte letters count as bytes.
  const fit = 'a'.repeat(1023 - 31) + '%p';
  assert.equal(cutByServer(fit, 130000), null);
  assert.equal(cutByServer(`${fit}b`, 130000), 1024);
  assert.equal(cutByServer(`${'é'.repeat(500)}%%`, 140000), null);
  assert.equal(cutByServer(`${'é'.repeat(512)}`, 140000), 1024);
});
