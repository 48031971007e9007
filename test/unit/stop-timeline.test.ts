// A standby's -j backup that ends on another timeline than it started on (it followed its
// upstream's promotion) is refused: its manifest and a repository's record carry one timeline.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { checkStopTimeline } from '../../src/backup/parallel/parallel-backup.js';

const sqlSaying = (t: string | null) => ({ query: async () => ({ rows: [{ t }] }) }) as never;

test('the stop point on the start timeline passes; on a later one the backup is refused, naming both', async () => {
  await checkStopTimeline(sqlSaying('1'), 1);
  await checkStopTimeline(sqlSaying('0'), 1); // not in recovery any more: promotion-watch says so
  await checkStopTimeline(sqlSaying('1'), 2); // right after a failover, before a restartpoint on timeline 2
  await assert.rejects(checkStopTimeline(sqlSaying('2'), 1), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_SERVER');
    assert.match(e.message, /the backup starts on timeline 1 and ends on timeline 2: the standby followed its upstream/);
    return true;
  });
});
