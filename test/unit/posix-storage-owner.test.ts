// The posix driver run as root: what it creates (files, and the directories a
// write makes on the way) takes the owner of the repository's directory, so
// that a restore or backup run as root leaves nothing the repository's own
// user (archive_command's, expire's) cannot replace or remove. Not as root,
// or in a directory root owns: nothing is given away.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';

const asRoot = process.getuid?.() === 0;

test('posix storage as root: new files and directories take the repository directory\'s owner', { skip: asRoot ? false : 'needs root' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-owner-'));
  try {
    chownSync(dir, 65534, 65534);
    const s = new PosixStorage(dir);
    await s.write('main/restore-lease/x.json', Buffer.from('{}'), { atomic: true, sync: true });
    await s.write('main/other.json', Buffer.from('{}'), { atomic: false, sync: false });
    for (const p of ['main', 'main/restore-lease', 'main/restore-lease/x.json', 'main/other.json']) {
      const st = statSync(join(dir, p));
      assert.deepEqual([st.uid, st.gid], [65534, 65534], p);
    }
    // A repository root owns: its files stay root's.
    const rootOwned = mkdtempSync(join(tmpdir(), 'pgpitr-owner-root-'));
    try {
      await new PosixStorage(rootOwned).write('a/b.json', Buffer.from('{}'));
      assert.equal(statSync(join(rootOwned, 'a', 'b.json')).uid, 0);
    } finally {
      rmSync(rootOwned, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
