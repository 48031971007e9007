// Ending worker threads that may be loading a native addon. Worker.terminate()
// during koffi's initialisation aborts the whole process; endThread() asks the
// thread to end between two tasks instead. The threads run in a child process,
// so that an abort fails this test instead of killing the test runner.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const threadExit = fileURLToPath(new URL('../../src/common/thread-exit.js', import.meta.url));
const packageJson = fileURLToPath(new URL('../../../package.json', import.meta.url));

/** A script that starts threads loading koffi and ends each one at a random moment of its start-up. */
function script(ending: 'endThread' | 'terminate', rounds: number): string {
  const worker = `
    import { parentPort } from 'node:worker_threads';
    import { createRequire } from 'node:module';
    import { exitOnRequest } from ${JSON.stringify(threadExit)};
    exitOnRequest(parentPort);
    parentPort.postMessage('loading');
    const t = Date.now(); while (Date.now() - t < 2) {}
    createRequire(${JSON.stringify(packageJson)})('koffi');`;
  return `
    import { Worker } from 'node:worker_threads';
    import { endThread } from ${JSON.stringify(threadExit)};
    for (let i = 0; i < ${rounds}; i++) {
      const w = new Worker(${JSON.stringify(worker)}, { eval: true });
      await new Promise((r) => w.once('message', r));
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      ${ending === 'endThread' ? 'await endThread(w);' : 'await w.terminate();'}
    }
    console.log('survived');`;
}

test('threads ended while they load koffi never take the process down', () => {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script('endThread', 60)], { encoding: 'utf8' });
  assert.equal(run.signal, null, run.stderr.slice(0, 2000));
  assert.equal(run.status, 0, run.stderr.slice(0, 2000));
  assert.match(run.stdout, /survived/);
});

test('a thread that exited already is ended at once, not after the grace period', { timeout: 20_000 }, async () => {
  const { Worker } = await import('node:worker_threads');
  const { endThread } = await import('../../src/common/thread-exit.js');
  const w = new Worker('1', { eval: true });
  await new Promise((r) => w.once('exit', r));
  // Were the exit not noticed, endThread would wait for an 'exit' event that already came, for
  // the whole grace period given here, and the test's timeout would fail it.
  await endThread(w, 600_000);
});
