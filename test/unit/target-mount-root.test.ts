// A data directory at a file system's root (a volume of its own): the file system's lost+found is
// not the directory's content, so a restore into the fresh volume is not refused as "not empty".

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectTarget, isMountRoot } from '../../src/restore/restore-target-dir.js';

test('inspectTarget: lost+found at a mount root leaves the directory empty; elsewhere it is content', (t) => {
  const top = mkdtempSync(join(tmpdir(), 'mountroot-'));
  const vol = join(top, 'vol');
  mkdirSync(vol);
  if (process.getuid?.() !== 0 || spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', vol]).status !== 0) {
    rmSync(top, { recursive: true, force: true });
    return t.skip('cannot mount a tmpfs here');
  }
  try {
    mkdirSync(join(vol, 'lost+found'));
    assert.equal(isMountRoot(vol), true);
    assert.equal(inspectTarget(vol).empty, true);
    const plain = join(top, 'plain');
    mkdirSync(join(plain, 'lost+found'), { recursive: true });
    assert.equal(isMountRoot(plain), false);
    assert.equal(inspectTarget(plain).empty, false);
  } finally {
    spawnSync('umount', ['-l', vol]);
    rmSync(top, { recursive: true, force: true });
  }
});

test('inspectTarget: -D a symbolic link to nowhere is refused naming where it leads (black-box run X); to a directory, that directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-dangling-'));
  try {
    symlinkSync(join(root, 'missing', 'data'), join(root, 'link'));
    assert.throws(() => inspectTarget(join(root, 'link')), (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, 'ERR_TARGET');
      assert.match(e.message, /is a symbolic link to ".*missing\/data", which does not exist/);
      assert.match(e.hint ?? '', /mkdir -p .*missing\/data/);
      return true;
    });
    mkdirSync(join(root, 'missing', 'data'), { recursive: true });
    assert.equal(inspectTarget(join(root, 'link')).empty, true);
    // A path that simply does not exist yet is no link: restore creates it.
    assert.equal(inspectTarget(join(root, 'new')).exists, false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
