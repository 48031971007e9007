// bin/pgpitr-spool-get and the fetcher's side of it (archiving/prefetch-ask.ts):
// restore_command's shell asks the running fetcher for a file and takes only its
// answers: the file (0), "not in the archive" (81); everything else, a fetcher
// gone, no fetcher, one that takes no request, no answer or a failure, is "ask
// archive-get" (2), never 81.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { answerAsk, isAskFile, parseAsk, waitingAsks } from '../../src/archiving/prefetch-ask.js';
import type { AskAnswerer, SpoolAsk } from '../../src/archiving/prefetch-ask.js';

// dist/test/unit/ -> the repository's root.
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'pgpitr-spool-get');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the script in `data` (as restore_command runs in the data directory) and answers its request with `answerer`. */
async function ask(data: string, spool: string, answerer: AskAnswerer | null): Promise<{ status: number | null; seen: SpoolAsk | null }> {
  const child = spawn('/bin/sh', [SCRIPT, spool, '00000002.history', 'pg_wal/RECOVERYHISTORY', '--stanza', 'main', '--repo', '/r a'], { cwd: data, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let seen: SpoolAsk | null = null;
  if (answerer !== null) {
    for (let i = 0; i < 500; i++) {
      const [request] = waitingAsks(readdirSync(spool));
      if (request !== undefined) {
        seen = parseAsk(readFileSync(join(spool, request)));
        await answerAsk(spool, request, answerer, () => {});
        break;
      }
      await sleep(10);
    }
  }
  return { status: await exited, seen };
}

// The runner has no timeout of its own: a script that waited for ever would hang the suite. Not a
// measure of speed (the script's waits total ~10 s here): a bound on a hang.
test('pgpitr-spool-get: the fetcher\'s answer, or none (2) when it cannot give one', { timeout: 300_000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'pgpitr-spool-get-'));
  try {
    const spool = join(data, 'spool');
    mkdirSync(spool);
    mkdirSync(join(data, 'pg_wal'));
    // No fetcher (no lock, then a lock of a process that is gone): no answer, at once.
    assert.equal(spawnSync('/bin/sh', [SCRIPT, spool, '00000002.history', 'pg_wal/RECOVERYHISTORY'], { cwd: data }).status, 2);
    writeFileSync(join(spool, 'fetcher.lock'), JSON.stringify({ pid: 2 ** 22 + 1 }));
    assert.equal(spawnSync('/bin/sh', [SCRIPT, spool, '00000002.history', 'pg_wal/RECOVERYHISTORY'], { cwd: data }).status, 2);
    // A live fetcher (this process) that does not say it answers (an older pgpitr's): no answer, at once.
    writeFileSync(join(spool, 'fetcher.lock'), JSON.stringify({ pid: process.pid, settings: [] }));
    assert.equal(spawnSync('/bin/sh', [SCRIPT, spool, '00000002.history', 'pg_wal/RECOVERYHISTORY'], { cwd: data }).status, 2);
    writeFileSync(join(spool, 'fetcher.answers'), String(process.pid));
    // The request carries the file, the directory, %p and the options.
    const found = await ask(data, spool, async (_req, into) => {
      writeFileSync(into, '2\t0/3000000\tno recovery target specified\n');
      return true;
    });
    assert.equal(found.status, 0);
    assert.deepEqual(found.seen, { name: '00000002.history', cwd: data, dest: 'pg_wal/RECOVERYHISTORY', args: ['--stanza', 'main', '--repo', '/r a'] });
    assert.equal(readFileSync(join(data, 'pg_wal', 'RECOVERYHISTORY'), 'utf8'), '2\t0/3000000\tno recovery target specified\n');
    rmSync(join(data, 'pg_wal', 'RECOVERYHISTORY'));
    assert.equal((await ask(data, spool, async () => false)).status, 81, 'not in the archive');
    assert.equal((await ask(data, spool, async () => null)).status, 2, 'left to archive-get');
    const failed = await ask(data, spool, async (_req, into) => {
      writeFileSync(into, 'part');
      throw new Error('the repository went away');
    });
    assert.equal(failed.status, 2, 'a failure is no answer, never "not in the archive"');
    assert.deepEqual(readdirSync(join(data, 'pg_wal')), [], 'nothing reaches %p but a whole answer');
    // A live process behind the lock that takes no request (a fetcher killed, its pid reused): no answer (the
    // script gives up by itself; a wait without end would fail this test at its timeout).
    assert.equal((await ask(data, spool, null)).status, 2);
    // Taken and never answered, the process behind the lock alive (a fetcher killed while it answered, its pid
    // reused): no answer once the wait is over (2 minutes; shortened here), not a wait without end.
    const left = spawn('/bin/sh', [SCRIPT, spool, '00000002.history', 'pg_wal/RECOVERYHISTORY'], { cwd: data, stdio: 'ignore', env: { ...process.env, PGPITR_SPOOL_GET_TRIES: '400' } });
    const leftExit = new Promise<number | null>((resolve) => left.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 500 && waitingAsks(readdirSync(spool)).length === 0; i++) await sleep(10);
    const [request] = waitingAsks(readdirSync(spool));
    assert.ok(request !== undefined);
    renameSync(join(spool, request), join(spool, `${request}.taken`));
    assert.equal(await leftExit, 2);
    rmSync(join(spool, `${request}.taken`));
    // The fetcher gone while the shell waits: no answer.
    writeFileSync(join(spool, 'fetcher.lock'), JSON.stringify({ pid: 2 ** 22 + 1 }));
    assert.equal((await ask(data, spool, null)).status, 2);
    // Each request and answer is gone with its shell.
    assert.deepEqual(readdirSync(spool).filter(isAskFile), []);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('a request is taken only whole: the file, the directory and %p, each ended by a NUL', () => {
  assert.equal(parseAsk(Buffer.from('00000002.history\0/data\0pg_wal/RECOVERYHISTORY')), null);
  assert.equal(parseAsk(Buffer.from('00000002.history\0/data\0')), null);
  assert.deepEqual(parseAsk(Buffer.from('00000002.history\0/data\0pg_wal/X\0--stanza\0main\0')), { name: '00000002.history', cwd: '/data', dest: 'pg_wal/X', args: ['--stanza', 'main'] });
  assert.deepEqual(waitingAsks(['ask.12-AbC9', 'ask.12-AbC9.found', 'ask.12', 'want', '000000010000000000000001']), ['ask.12-AbC9']);
});
