// When a fetcher judges the recovery it serves ended (archiving/recovery-ended.ts): a signal file
// seen, then none while a server runs (postmaster.pid); one removed while no server runs (a
// leftover one a --delta removes), or never seen (restore's head start), ends nothing.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recoveryEndWatch } from '../../src/archiving/recovery-ended.js';

test('ended once recovery.signal or standby.signal was seen and both are gone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-recovery-end-'));
  try {
    let now = 0;
    const ended = recoveryEndWatch(dir, () => now);
    assert.equal(ended(), false, 'no signal yet: restore has not written it');
    now += 1000;
    writeFileSync(join(dir, 'recovery.signal'), '');
    assert.equal(ended(), false);
    unlinkSync(join(dir, 'recovery.signal'));
    now += 1000;
    assert.equal(ended(), false, 'a signal file removed while no server runs (restore --delta): no recovery ended');
    writeFileSync(join(dir, 'standby.signal'), '');
    writeFileSync(join(dir, 'recovery.signal'), '');
    writeFileSync(join(dir, 'postmaster.pid'), '');
    now += 1000;
    assert.equal(ended(), false, 'recovering');
    unlinkSync(join(dir, 'recovery.signal'));
    now += 1000;
    assert.equal(ended(), false, 'standby.signal alone: still recovering');
    unlinkSync(join(dir, 'standby.signal'));
    now += 500;
    assert.equal(ended(), false, 'not looked at again within the second');
    now += 500;
    assert.equal(ended(), true);
    writeFileSync(join(dir, 'recovery.signal'), '');
    now += 1000;
    assert.equal(ended(), true, 'an end stays an end');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a recovery too short to be seen between two looks: restore_command asking is a recovery seen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-recovery-end-'));
  try {
    let now = 0;
    const ended = recoveryEndWatch(dir, () => now);
    assert.equal(ended(false), false);
    writeFileSync(join(dir, 'postmaster.pid'), '');
    now += 1000;
    assert.equal(ended(false), false, 'a server and no signal file, never asked: a primary, not a recovery that ended');
    now += 1000;
    assert.equal(ended(true), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
