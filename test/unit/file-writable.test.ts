import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileWritable } from '../../src/storage/file-writable.js';
import { writeWithBackpressure, endWritable } from '../../src/storage/stream-util.js';

test('FileWritable told to keep no chunk: a chunk reused once write() returned is written as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fw-'));
  try {
    const out = new FileWritable(join(dir, 'f'), false, 0o600, true);
    const reused = Buffer.alloc(300 * 1024);
    const expected: Buffer[] = [];
    // Small chunks (gathered), a large one (written at once), small again, all from one buffer.
    for (const [i, n] of [[1, 1000], [2, 70 * 1024], [3, 300 * 1024], [4, 5], [5, 200 * 1024], [6, 100 * 1024]] as const) {
      reused.fill(i, 0, n);
      expected.push(Buffer.from(reused.subarray(0, n)));
      await writeWithBackpressure(out, reused.subarray(0, n));
      reused.fill(0xee); // the caller reuses the memory at once
    }
    await endWritable(out);
    assert.ok(readFileSync(join(dir, 'f')).equals(Buffer.concat(expected)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
