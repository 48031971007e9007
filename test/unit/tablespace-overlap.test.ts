// A tablespace directory inside the data directory: the backup's own location is the target's
// problem (exit 5, black-box run V), a --tablespace-map that overlaps is the user's option (exit 2).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { tablespaceOverlap } from '../../src/restore/tablespace-overlap.js';
import { exitCodeFor } from '../../src/cli/exit-codes.js';

test('a tablespace recorded inside the data directory: exit 5 naming it and the map that moves it; a mapping that overlaps: exit 2', () => {
  const recorded = tablespaceOverlap(16384, 'ts_in', '/d/ts_in', false, '/d');
  assert.equal(recorded.code, 'ERR_TARGET');
  assert.equal(exitCodeFor(recorded.code), 5);
  assert.match(recorded.message, /tablespace 16384 \(ts_in\)'s recorded location "\/d\/ts_in" overlaps the data directory "\/d"/);
  assert.match(recorded.hint ?? '', /--tablespace-map ts_in=PATH/);
  const mapped = tablespaceOverlap(16384, undefined, '/d/x', true, '/d');
  assert.equal(exitCodeFor(mapped.code), 2);
  assert.match(mapped.message, /^tablespace 16384's directory "\/d\/x" overlaps/);
});
