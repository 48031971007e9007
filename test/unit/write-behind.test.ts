// Write-behind is advisory: on a file being written it starts writeback and
// changes nothing in the file; on a descriptor that is not a file, or closed,
// it does nothing and throws nothing.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWriteback } from '../../src/storage/posix/write-behind.js';

test('startWriteback leaves the file as written and ignores bad descriptors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-wb-'));
  try {
    const path = join(dir, 'f');
    const fd = openSync(path, 'w');
    const data = Buffer.alloc(3 << 20, 7);
    writeSync(fd, data);
    startWriteback(fd, 0, data.length);
    startWriteback(fd, 1 << 20, 1 << 30); // past the end
    closeSync(fd);
    assert.ok(readFileSync(path).equals(data));
    startWriteback(fd, 0, 1); // closed
    startWriteback(0, 0, 1); // not a regular file
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
