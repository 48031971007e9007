// The output directories of a basebackup run: each must be a directory of its own.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputDirs } from '../../src/backup/target-dir.js';

test('two tablespaces mapped to one directory: the second is refused, naming the first', () => {
  const root = mkdtempSync(join(tmpdir(), 'outdirs-'));
  try {
    const dirs = new OutputDirs();
    dirs.sync = false;
    dirs.prepare(join(root, 'target'), 'target directory');
    dirs.prepare(join(root, 'same'), 'tablespace directory (oid 16384)');
    assert.throws(() => dirs.prepare(join(root, 'x', '..', 'same'), 'tablespace directory (oid 16385)'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_USAGE');
      assert.match(e.message, /tablespace directory \(oid 16385\) ".*same" is already the tablespace directory \(oid 16384\)/);
      return true;
    });
    assert.throws(() => dirs.prepare(join(root, 'target'), 'WAL directory'), /is already the target directory/);
    assert.equal(dirs.paths.length, 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
