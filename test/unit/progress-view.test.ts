// What `pgpitr backup` prints on its own (cli/progress-view.ts): without -P or -v, a terminal is
// told once that the backup waits for the server's next (spread) checkpoint, which can take
// minutes; a log (not a terminal) and a fast checkpoint are not.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ProgressView } from '../../src/cli/progress-view.js';
import type { ProgressSnapshot } from '../../src/backup/reporter.js';

function output(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const out = { isTTY, columns: 80, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  return { out, text: () => text };
}

const at = (phase: ProgressSnapshot['phase']): ProgressSnapshot => ({ phase, bytesDone: 0, bytesTotal: null, tablespacesDone: 0, tablespacesTotal: 1 });

test('a spread checkpoint is announced once on a terminal, not in a log, not with -v (which says it itself)', () => {
  const note = 'waiting for the next checkpoint';
  const tty = output(true);
  const view = new ProgressView({ progress: false, format: 'text', verbose: 0, out: tty.out, checkpointWaitNote: note });
  view.progress(at('waiting for checkpoint to finish'));
  view.progress(at('waiting for checkpoint to finish'));
  view.progress(at('streaming database files'));
  assert.equal(tty.text(), `pgpitr: ${note}\n`);

  const log = output(false);
  new ProgressView({ progress: false, format: 'text', verbose: 0, out: log.out, checkpointWaitNote: note }).progress(at('waiting for checkpoint to finish'));
  assert.equal(log.text(), '');

  const verbose = output(true);
  new ProgressView({ progress: false, format: 'text', verbose: 1, out: verbose.out, checkpointWaitNote: note }).progress(at('waiting for checkpoint to finish'));
  assert.equal(verbose.text(), '');

  const fast = output(true); // --start-fast: no note given
  new ProgressView({ progress: false, format: 'text', verbose: 0, out: fast.out }).progress(at('waiting for checkpoint to finish'));
  assert.equal(fast.text(), '');
});
