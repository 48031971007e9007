// verify's text output: the files of one damaged bundle (cut short: every file past the cut fails)
// are said once, with how many more; other problems one each, in order.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { groupByBundle } from '../../src/cli/commands/verify.js';

test('verify groups the problems of files stored in one bundle of one backup', () => {
  const p = (scope: string, object: string) => ({ scope, object, problem: `stored file "${object}" of "x" is damaged` });
  const groups = groupByBundle([
    p('B1', '/r/main/backup/B1/bundle/0.zst (bytes 10-20)'),
    p('B1', '/r/main/backup/B1/data/base/1/2.zst'),
    p('B1', '/r/main/backup/B1/bundle/0.zst (bytes 21-40)'),
    p('B2', '/r/main/backup/B1/bundle/0.zst (bytes 21-40)'),
    p('B1', '/r/main/backup/B1/bundle/1.zst (bytes 0-9)'),
    p('B1', '/r/main/backup/B1/bundle/0.zst (bytes 41-60)'),
  ]);
  assert.deepEqual(groups.map((g) => [g[0]!.scope, g[0]!.object, g.length]), [
    ['B1', '/r/main/backup/B1/bundle/0.zst (bytes 10-20)', 3],
    ['B1', '/r/main/backup/B1/data/base/1/2.zst', 1],
    ['B2', '/r/main/backup/B1/bundle/0.zst (bytes 21-40)', 1],
    ['B1', '/r/main/backup/B1/bundle/1.zst (bytes 0-9)', 1],
  ]);
});
