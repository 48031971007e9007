// A file of the cluster being backed up that -j's direct read method cannot read is named as the
// source's, with the ways out; the target's hint ("check the permissions of the target directory") is not given.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { sourceError } from '../../src/common/errors.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';

test('sourceError: the source named, the read method and user as the fix', () => {
  const denied = sourceError('read directory', '/srv/ts/t5', Object.assign(new Error("EACCES: permission denied, scandir '/srv/ts/t5'"), { code: 'EACCES' }));
  assert.match(denied.message, /^could not read directory "\/srv\/ts\/t5" of the cluster being backed up: EACCES/);
  assert.match(denied.hint!, /run it as the server's operating-system user .* --read-method=sql/);
  assert.doesNotMatch(denied.hint!, /target/);
  assert.equal(exitCodeFor(denied.code), 5);
  const other = sourceError('stat', '/srv/d/base/1/2', Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
  assert.equal(other.hint, undefined);
});
