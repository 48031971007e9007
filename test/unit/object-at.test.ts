// Messages name a stored object by its key under the repository's location: inside the quotes of
// an object store's location, so that it can be copied into a client (aws s3 ls "s3://b/p/k").

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { objectAt } from '../../src/storage/storage-path.js';

test('objectAt: a path under a posix location, and under an object store\'s quoted one', () => {
  assert.equal(objectAt('/var/lib/pgpitr', 'main/archive/x'), '/var/lib/pgpitr/main/archive/x');
  assert.equal(objectAt('"s3://pgbk/pgpitr" at http://127.0.0.1:57390', 'main/archive/x.zst'), '"s3://pgbk/pgpitr/main/archive/x.zst" at http://127.0.0.1:57390');
  assert.equal(objectAt('"s3://pgbk" at https://s3.example', 'main/x'), '"s3://pgbk/main/x" at https://s3.example');
  // A posix storage's location is its quoted path: the file's whole path is quoted, not the root alone.
  assert.equal(objectAt('"/tmp/r"', 'main/backup/x/data/1.zst'), '"/tmp/r/main/backup/x/data/1.zst"');
});
