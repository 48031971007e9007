// The probe of exclusive create (repo/conditional-create.ts): a store that
// enforces it and one that ignores it, the answer recorded in the repository
// marker beside its other fields, and a lock on a store recorded false is
// advisory.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import type { Storage, WriteOptions } from '../../src/storage/storage.js';
import { probeConditionalCreate, recordConditionalCreate, recordedConditionalCreate } from '../../src/repo/conditional-create.js';
import { RepoLock } from '../../src/repo/lock.js';

/** A store that accepts If-None-Match and ignores it: an exclusive write overwrites. */
function ignoringExclusive(inner: Storage): Storage {
  return Object.assign(Object.create(inner) as Storage, {
    write: (path: string, source: Buffer, opts: WriteOptions = {}) => inner.write(path, source, { ...opts, exclusive: false }),
  });
}

test('the probe tells a store that enforces exclusive create from one that ignores it, and leaves nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-probe-'));
  try {
    const storage = new PosixStorage(dir);
    assert.equal(await probeConditionalCreate(storage), true);
    assert.equal(await probeConditionalCreate(ignoringExclusive(storage)), false);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the answer is recorded in the marker, beside its other fields; locks are then advisory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-probe-'));
  try {
    const storage = new PosixStorage(dir);
    writeFileSync(join(dir, 'pgpitr-repo.json'), JSON.stringify({ format: 'pgpitr-repository', format_version: 1, other: 'kept' }));
    assert.equal(await recordedConditionalCreate(storage), null);
    const honoured = await RepoLock.acquire(storage, 'repository.lock', 'test');
    assert.equal(honoured.advisory, false);
    await honoured.release();
    await recordConditionalCreate(storage, false);
    assert.equal(await recordedConditionalCreate(storage), false);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'pgpitr-repo.json'), 'utf8')), { format: 'pgpitr-repository', format_version: 1, other: 'kept', conditional_create: false });
    const advisory = await RepoLock.acquire(storage, 'repository.lock', 'test');
    assert.equal(advisory.advisory, true);
    await advisory.release();
    await recordConditionalCreate(storage, true);
    assert.equal(await recordedConditionalCreate(storage), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
