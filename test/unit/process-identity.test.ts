// Whether a "running" backup record's process still runs (common/process-identity.ts): a pid of
// another pid namespace (a container sharing the host name) cannot be judged here, so it is taken
// to run; one of this namespace is judged by the pid, its start time and the boot.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { hostname } from 'node:os';
import { currentBootId, currentPidNamespace, processStartTime, sameProcessAlive } from '../../src/common/process-identity.js';

// A pid no process holds: above the largest pid Linux hands out by default.
const FREE_PID = 4_194_304 + 17;

test('sameProcessAlive: this process is alive; a free pid is not, unless recorded in another pid namespace', { skip: currentPidNamespace() === null ? 'no /proc' : false }, () => {
  const host = hostname();
  const me = { host, pid: process.pid, startTime: processStartTime(process.pid), bootId: currentBootId(), pidNs: currentPidNamespace() };
  assert.equal(sameProcessAlive(me, host), true);
  assert.equal(sameProcessAlive({ ...me, startTime: '1' }, host), false, 'a reused pid is not the process');
  assert.equal(sameProcessAlive({ ...me, pid: FREE_PID }, host), false);
  assert.equal(sameProcessAlive({ ...me, pid: FREE_PID, pidNs: 'pid:[1]' }, host), true, 'another namespace: cannot be judged');
  assert.equal(sameProcessAlive({ ...me, pid: FREE_PID, pidNs: undefined }, host), false, 'records of older pgpitr: by the pid');
  assert.equal(sameProcessAlive({ ...me, pid: FREE_PID, pidNs: 'pid:[1]', bootId: 'another-boot' }, host), false, 'no process outlives a reboot');
  assert.equal(sameProcessAlive({ ...me, pid: FREE_PID, host: `${host}-other` }, host), true, 'another host: assumed to run');
});

test('recordProcessAlive: a running record of another pid namespace is taken to run for a day from its start, then judged by its pid', { skip: currentPidNamespace() === null ? 'no /proc' : false }, async () => {
  const { recordProcessAlive } = await import('../../src/repo/backup-set/record.js');
  type Rec = Parameters<typeof recordProcessAlive>[0];
  const now = Date.parse('2026-12-07T12:00:00Z');
  const rec = (startedHoursAgo: number): Rec => ({ state: 'running', start_time: new Date(now - startedHoursAgo * 3600_000).toISOString(), process: { host: hostname(), pid: FREE_PID, start_ticks: '1', boot_id: currentBootId(), pid_ns: 'pid:[1]' } }) as unknown as Rec;
  assert.equal(recordProcessAlive(rec(2), now), true);
  assert.equal(recordProcessAlive(rec(25), now), false, 'a container killed mid-backup is not running until the host reboots');
});
