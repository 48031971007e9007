// check, when its segment does not reach the repository, says so when the archive's history files
// end the server's timeline before that segment (black-box run U: a split-brained old primary got
// only "did not reach the repository").

import { test, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { createStanza } from '../../src/repo/stanza.js';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { splitBrain } from '../../src/commands/check-split-brain.js';

const root = mkdtempSync(join(tmpdir(), 'pgpitr-splitbrain-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('a segment past where a history file ends its timeline is named a split brain; before it, or on the new timeline, nothing is said', async () => {
  const repo = repositoryOn(new PosixStorage(root), root);
  const { info } = await createStanza(repo, { stanza: 'main', system_identifier: '7441234567890123457', pg_major: 16, wal_segment_size: 16 * 1024 * 1024 });
  const repos = [{ index: 1, repo }];
  assert.equal(await splitBrain({ repos, stanza: 'main' }, '000000010000000000000009'), null);
  await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/5000A28\tno recovery target specified\n'), { compression: 'none' });
  assert.match((await splitBrain({ repos, stanza: 'main' }, '000000010000000000000009')) ?? '', /history files end timeline 1 at 0\/5000A28.*split brain.*restore --delta --standby/);
  assert.match((await splitBrain({ repos, stanza: 'main' }, '000000010000000000000005')) ?? '', /split brain/, 'the segment of the fork itself');
  assert.equal(await splitBrain({ repos, stanza: 'main' }, '000000010000000000000004'), null);
  assert.equal(await splitBrain({ repos, stanza: 'main' }, '000000020000000000000009'), null);
});
