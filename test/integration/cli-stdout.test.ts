// Any command's standard output may fail: its reader closed the pipe (EPIPE)
// or the device is full (ENOSPC). That is one error line with a hint and exit
// 5, never an unhandled 'error' event with a stack trace, never exit 0 for
// output that was cut short. (basebackup -D - is covered with a real server in
// basebackup-output-targets.test.ts.)

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { CLI } from '../helpers/pgpitr.js';

function run(args: string[], stdout: 'pipe' | number, closeAtOnce: boolean) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', stdout, 'pipe'] });
  if (closeAtOnce) child.stdout!.destroy(); // the reader is gone before pgpitr writes
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

function assertCleanError(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 5, r.stderr);
  assert.match(r.stderr, pattern);
  assert.match(r.stderr, /^pgpitr: hint: /m);
  assert.doesNotMatch(r.stderr, /Unhandled 'error' event|\n\s+at /);
}

test('help to a closed pipe is a clean error', async () => {
  assertCleanError(await run(['--help'], 'pipe', true), /^pgpitr: error: could not write to standard output: write EPIPE$/m);
});

test('help to a full device is a clean error', async () => {
  const fd = openSync('/dev/full', 'w');
  try {
    assertCleanError(await run(['basebackup', '--help'], fd, false), /^pgpitr: error: could not write to standard output: .*ENOSPC/m);
  } finally {
    closeSync(fd);
  }
});
