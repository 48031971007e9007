// The recovery settings restore writes: one replaceable block in
// postgresql.auto.conf, every other recovery setting commented out (there and
// in postgresql.conf), a standby keeping how it reaches its primary.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { recoverySettingsBlock, withRecoverySettings, withoutRecoverySettings } from '../../src/postgres/restore-settings.js';

const block = recoverySettingsBlock({ restoreCommand: "pgpitr archive-get %f '%p'", target: { name: 'recovery_target_time', value: '2026-12-01 11:45:00+00' }, timeline: '2', action: 'promote' });

test('the block is quoted for postgresql.conf and replaces an earlier one', () => {
  assert.match(block, /restore_command = 'pgpitr archive-get %f ''%p'''/);
  assert.match(block, /recovery_target_timeline = '2'/);
  const once = withRecoverySettings("shared_buffers = '1GB'\n", block);
  const twice = withRecoverySettings(once, block);
  assert.equal(twice, once);
  assert.equal(twice.match(/recovery settings written by pgpitr restore: begin/g)!.length, 1);
});

test('other recovery settings are commented out; a standby keeps its connection to the primary', () => {
  const conf = "recovery_target_xid = '42'\nprimary_conninfo = 'host=p'\nwork_mem = '4MB'\nrecovery_min_apply_delay = '5min'\n";
  const plain = withoutRecoverySettings(conf);
  assert.match(plain, /^# disabled by pgpitr restore: recovery_target_xid = '42'$/m);
  assert.match(plain, /^# disabled by pgpitr restore: primary_conninfo/m);
  assert.match(plain, /^work_mem = '4MB'$/m);
  const standby = withoutRecoverySettings(conf, true);
  assert.match(standby, /^primary_conninfo = 'host=p'$/m);
  assert.match(standby, /^recovery_min_apply_delay = '5min'$/m);
  assert.match(standby, /^# disabled by pgpitr restore: recovery_target_xid/m);
});
