import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteBehind } from '../../src/backup/parallel/write-behind.js';

test('WriteBehind: chunks read into its buffers in turn land at their positions; a failed write fails the next call', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-'));
  try {
    const path = join(dir, 'f');
    const fd = openSync(path, 'wx');
    const wb = new WriteBehind([Buffer.alloc(600 * 1024), Buffer.alloc(600 * 1024)], (e) => new Error(`could not write: ${e.code}`));
    const expected: Buffer[] = [];
    let pos = 0;
    for (let i = 0; i < 5; i++) {
      const buf = wb.next();
      const n = 600 * 1024 - i * 1000;
      buf.fill(i + 1, 0, n); // the buffer given is never the one still being written
      expected.push(Buffer.from(buf.subarray(0, n)));
      await wb.write(fd, buf.subarray(0, n), pos);
      pos += n;
    }
    await wb.drain();
    closeSync(fd);
    assert.ok(readFileSync(path).equals(Buffer.concat(expected)));

    const ro = openSync(path, 'r');
    await wb.write(ro, wb.next().subarray(0, 10), 0);
    await assert.rejects(wb.drain(), /could not write: EBADF/);
    closeSync(ro);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
