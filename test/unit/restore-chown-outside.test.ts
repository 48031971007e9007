// Restore run as root gives the tablespace and WAL roots outside the data directory to the server's
// user: only the directories it made or found there. One swapped for a link to elsewhere while the
// restore ran (by that user, who may write in the parent) is refused, and what it leads to keeps its owner.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chownOutside } from '../../src/restore/target-owner.js';

const asRoot = process.getuid?.() === 0;

test('chownOutside refuses a tablespace or WAL root swapped for a link since restore made it', { skip: asRoot ? false : 'needs root' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-chown-'));
  try {
    const owner = { uid: 4321, gid: 4321 };
    const ts = join(root, 'ts');
    const wal = join(root, 'wal');
    const elsewhere = join(root, 'etc');
    for (const d of [ts, wal, elsewhere]) mkdirSync(d);
    const ids = new Map([ts, wal].map((d) => [d, { dev: statSync(d).dev, ino: statSync(d).ino }]));
    // Untouched: both given away.
    chownOutside(owner, wal, [{ path: ts, versionDir: null }], [], ids);
    assert.equal(statSync(ts).uid, 4321);
    assert.equal(statSync(wal).uid, 4321);
    // Swapped for a link to a directory of root's: refused, that directory stays root's.
    for (const swapped of [ts, wal]) {
      renameSync(swapped, `${swapped}.away`);
      symlinkSync(elsewhere, swapped);
      assert.throws(() => chownOutside(owner, swapped === wal ? wal : undefined, swapped === ts ? [{ path: ts, versionDir: null }] : [], [], ids), /is no longer the directory this restore wrote/);
      assert.equal(statSync(elsewhere).uid, 0);
      rmSync(swapped);
      renameSync(`${swapped}.away`, swapped);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
