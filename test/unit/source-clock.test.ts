// The clock a -j copy's start is journaled by (source-clock.ts): with the sql read method the
// server's, never ahead of it, whatever this host's clock says; else this host's.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { hostClock, serverClock } from '../../src/backup/parallel/source-clock.js';
import { reusable } from '../../src/backup/parallel/copy-journal.js';

test('serverClock: a server 5 s behind this host gives times 5 s behind, never ahead of its clock', async () => {
  const behindMs = 5000;
  const serverNowUs = () => (Date.now() - behindMs) * 1000;
  const clock = await serverClock(async () => ({ rows: [{ us: String(serverNowUs()) }] }));
  const started = clock();
  assert.ok(started <= serverNowUs(), `${started} is ahead of the server's ${serverNowUs()}`);
  assert.ok(hostClock() - started >= behindMs * 1000, 'this host\'s clock is not taken as the server\'s');
  // A file the server modified right after this copy began (its time in whole seconds, as
  // pg_stat_file gives it) is never taken as unchanged by a resumed run.
  const modifiedUs = Math.floor(serverNowUs() / 1_000_000) * 1_000_000;
  assert.equal(reusable({ size: 8192, mtime_us: modifiedUs, started_us: started }, { size: 8192, mtimeUs: modifiedUs }), false);
});

test('serverClock: a server ahead of this host gives its own, later, times', async () => {
  const clock = await serverClock(async () => ({ rows: [{ us: String((Date.now() + 60_000) * 1000) }] }));
  assert.ok(clock() > hostClock() + 50_000_000);
});
