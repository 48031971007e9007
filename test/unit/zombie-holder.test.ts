// A lock's holder that has exited but is not reaped yet (a zombie: kill -9 under a parent that
// waits late) is dead: kill(pid, 0) still succeeds on it, /proc says state Z (repo/lock.ts).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { processAlive } from '../../src/repo/lock.js';

test('processAlive: a zombie is not alive', async () => {
  // The shell's background child exits at once; the shell then becomes sleep, which never waits for it.
  const parent = spawn('/bin/sh', ['-c', 'true & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))));
    for (let i = 0; i < 50 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(processAlive(pid), false);
    assert.equal(processAlive(process.pid), true);
  } finally {
    parent.kill('SIGKILL');
  }
});
