// receive-wal's background threads run at a lower CPU priority than its main
// thread (Linux). Checked in a process of its own: an unprivileged process cannot
// undo it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';

test('lowerBackgroundThreadsPriority lowers every thread but the main one', { skip: process.platform !== 'linux' }, () => {
  const moduleUrl = new URL('../../src/wal/background-priority.js', import.meta.url).href;
  const script = `
    import { lowerBackgroundThreadsPriority, BACKGROUND_NICE } from ${JSON.stringify(moduleUrl)};
    import { readdirSync, readFileSync, promises as fsp } from 'node:fs';
    await fsp.readFile('/proc/self/stat'); // the thread pool exists from here on
    const changed = lowerBackgroundThreadsPriority();
    const nice = (tid) => { const s = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]); };
    const others = readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid);
    console.log(JSON.stringify({ changed, expected: BACKGROUND_NICE, main: nice(process.pid), others: others.map(nice) }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { changed: number; expected: number; main: number; others: number[] };
  assert.ok(out.changed >= 4, `at least the 4 thread-pool threads are lowered (${out.changed})`);
  assert.equal(out.main, 0, 'the main thread keeps its priority');
  assert.ok(out.others.length > 0 && out.others.every((n) => n === out.expected), `other threads at nice ${out.expected}: ${out.others.join(' ')}`);
});
