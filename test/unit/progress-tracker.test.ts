// The bytes a backup's progress shows (backup/progress-tracker.ts): the server's count, sent at
// most once a second, and the client's own, whichever is ahead; bytes received after the server's
// last message still count (a -Z client-lz4 backup once ended showing 21%).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ProgressTracker } from '../../src/backup/progress-tracker.js';
import type { BackupReporter, ProgressSnapshot } from '../../src/backup/reporter.js';

function tracked(): { tracker: ProgressTracker; last: () => ProgressSnapshot } {
  let last: ProgressSnapshot | null = null;
  const reporter = { progress: (s: ProgressSnapshot) => (last = { ...s }), info() {}, warn() {}, serverNotice() {}, done() {} } as unknown as BackupReporter;
  return { tracker: new ProgressTracker(reporter), last: () => last! };
}

test("the server's count and the client's: the larger is shown, and the client's goes on after the server's last message", () => {
  const { tracker, last } = tracked();
  tracker.totals(1000, 1);
  tracker.addBytes(100);
  assert.equal(last().bytesDone, 100);
  tracker.serverProgress(210); // the server read ahead of what reached the client
  assert.equal(last().bytesDone, 210);
  tracker.addBytes(100); // client 200: still behind
  assert.equal(last().bytesDone, 210);
  tracker.addBytes(800); // no more server messages: the client's count carries it to the end
  assert.equal(last().bytesDone, 1000);
  assert.equal(last().bytesTotal, 1000);
  tracker.addBytes(24); // past the estimate: the total follows
  assert.equal(last().bytesTotal, 1024);
});
