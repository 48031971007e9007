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
