// Delta restore's removals never cross into another file system (restore/remove-within.ts), and a
// name starting with ".." inside a directory is inside it (restore-target-dir.ts within).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeWithin } from '../../src/restore/remove-within.js';
import { placeLink } from '../../src/restore/target-files.js';
import { within } from '../../src/restore/restore-target-dir.js';

test('removeWithin: a tree goes whole, links are removed, not followed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-rmwithin-'));
  try {
    const outside = join(root, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'x');
    const tree = join(root, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    writeFileSync(join(tree, 'a', 'b', 'f'), 'x');
    symlinkSync(outside, join(tree, 'a', 'link'));
    assert.equal(await removeWithin(tree, lstatSync(tree)), true);
    assert.equal(existsSync(tree), false);
    assert.deepEqual(readdirSync(outside), ['keep']);
    assert.equal(await removeWithin(join(root, 'gone'), lstatSync(outside)), true, 'already gone: nothing to do');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('removeWithin and the delta walk: a directory swapped for a link after it was looked at leads nowhere else', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-rmwithin-swap-'));
  try {
    const victim = join(root, 'etc');
    mkdirSync(victim);
    writeFileSync(join(victim, 'passwd'), 'root:x:0:0\n');
    const tree = join(root, 'tree');
    mkdirSync(join(tree, 'base', '1'), { recursive: true });
    const seen = lstatSync(join(tree, 'base'));
    // Swapped by the directory's owner between the lstat and the removal.
    rmSync(join(tree, 'base'), { recursive: true });
    symlinkSync(victim, join(tree, 'base'));
    await assert.rejects(removeWithin(join(tree, 'base'), seen), /base" became a link \(or a file\) while the restore removed/);
    assert.deepEqual(readdirSync(victim), ['passwd']);
    // The same one level down, reached through the open parent (as the delta walk does).
    const { withDir } = await import('../../src/restore/anchored-dir.js');
    await assert.rejects(withDir(tree, tree, true, (d) => removeWithin(join(tree, 'base'), seen, d.at('base'))), /became a link/);
    assert.deepEqual(readdirSync(victim), ['passwd']);
    // The parent swapped while it is walked: what is below is reached through the directory opened.
    mkdirSync(join(victim, 'sub'));
    writeFileSync(join(victim, 'sub', 'shadow'), 'x');
    rmSync(join(tree, 'base'));
    mkdirSync(join(tree, 'sub'));
    writeFileSync(join(tree, 'sub', 'old'), 'x');
    const sub = lstatSync(join(tree, 'sub'));
    await withDir(tree, tree, true, async (d) => {
      renameSync(tree, `${tree}.old`);
      symlinkSync(victim, tree);
      assert.equal(await removeWithin(join(tree, 'sub'), sub, d.at('sub')), true);
    });
    assert.deepEqual(readdirSync(join(victim, 'sub')), ['shadow']);
    assert.deepEqual(readdirSync(`${tree}.old`), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('removeWithin: what is mounted below stays, with the directories leading there; placeLink refuses to replace it', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-rmwithin-mount-'));
  const mnt = join(root, 'tree', 'sub', 'nfs');
  mkdirSync(mnt, { recursive: true });
  if (process.getuid?.() !== 0 || spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]).status !== 0) {
    rmSync(root, { recursive: true, force: true });
    return t.skip('mounting a tmpfs needs root');
  }
  try {
    writeFileSync(join(mnt, 'theirs'), 'x');
    writeFileSync(join(root, 'tree', 'sub', 'ours'), 'x');
    writeFileSync(join(root, 'tree', 'ours'), 'x');
    assert.equal(await removeWithin(join(root, 'tree'), lstatSync(join(root, 'tree'))), false);
    assert.deepEqual(readdirSync(mnt), ['theirs']);
    assert.deepEqual(readdirSync(join(root, 'tree')), ['sub']);
    assert.deepEqual(readdirSync(join(root, 'tree', 'sub')), ['nfs']);
    await assert.rejects(placeLink(join(root, 'tree'), '/somewhere', 'WAL directory'), (e: Error & { code?: string }) => e.code === 'ERR_TARGET' && /holds a mount point/.test(e.message));
    assert.deepEqual(readdirSync(mnt), ['theirs']);
    // The link's place a mount point itself: refused before anything in it is removed.
    await assert.rejects(placeLink(mnt, '/somewhere', 'tablespace'), (e: Error & { code?: string }) => e.code === 'ERR_TARGET' && /nfs is a mount point/.test(e.message));
    assert.deepEqual(readdirSync(mnt), ['theirs']);
  } finally {
    spawnSync('umount', [mnt]);
    rmSync(root, { recursive: true, force: true });
  }
});

test('within: a name starting with ".." inside a directory is inside it', () => {
  assert.equal(within('/data/..ts', '/data'), true);
  assert.equal(within('/data/a/..b/c', '/data'), true);
  assert.equal(within('/data/../x', '/data'), false);
  assert.equal(within('/data', '/data'), true);
  assert.equal(within('/other', '/data'), false);
});
