// A WAL file's stored copy is looked up by name prefix (one small page on
// object storage, not a 256-segment directory), seen through a Storage that
// records what it is asked.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import type { ListOptions, Storage, StorageFeatures } from '../../src/storage/storage.js';
import { findStored, pushWalFile } from '../../src/repo/archive-store.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { storedName } from '../../src/repo/layout.js';
import type { StanzaInfo } from '../../src/repo/stanza.js';

interface Calls {
  lists: { path: string; opts: ListOptions | undefined }[];
}

/** The storage, seen as object storage (no directories), with its list calls recorded. */
function recorded(inner: Storage, calls: Calls, features: Partial<StorageFeatures> = { directories: false }): Storage {
  return Object.assign(Object.create(inner) as Storage, {
    features: { ...inner.features, ...features },
    list: (path: string, opts?: ListOptions) => {
      calls.lists.push({ path, opts });
      return inner.list(path, opts);
    },
  });
}

const SHA = 'a'.repeat(64);

test('findStored and pushWalFile list only the names of the WAL file looked up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-lookup-'));
  try {
    const sub = join(dir, 'main', 'archive', '0000000100000000');
    mkdirSync(sub, { recursive: true });
    for (let i = 1; i <= 40; i++) writeFileSync(join(sub, storedName(`0000000100000000000000${i.toString(16).toUpperCase().padStart(2, '0')}`, SHA, '.zst')), 'x');
    const calls: Calls = { lists: [] };
    const repo = repositoryOn(recorded(new PosixStorage(dir), calls), dir);
    const found = await findStored(repo, 'main', '000000010000000000000011');
    assert.deepEqual(found, { stored: storedName('000000010000000000000011', SHA, '.zst'), sha256: SHA, extension: '.zst' });
    assert.equal(await findStored(repo, 'main', '000000010000000000000099'), null);
    assert.deepEqual(calls.lists.map((c) => c.opts?.prefix), ['000000010000000000000011-', '000000010000000000000099-']);
    // A push of a history file (no segment checks) looks up its own name only: before its write,
    // and after it (another cluster's copy stored meanwhile: archive-conflict.test.ts).
    calls.lists.length = 0;
    const stanza: StanzaInfo = { format: 'pgpitr-stanza', format_version: 1, stanza: 'main', system_identifier: '1', pg_major: 15, wal_segment_size: 16 * 1024 * 1024, created_at: '' };
    writeFileSync(join(dir, 'main', 'stanza.json'), JSON.stringify(stanza)); // a push checks the record is still there
    const pushed = await pushWalFile(repo, stanza, '00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'), { compression: 'none' });
    assert.equal(pushed.status, 'stored');
    assert.deepEqual(calls.lists.map((c) => c.opts?.prefix), ['00000002.history-', '00000002.history-']);
    // Where directories are real, the push lists the whole directory: it cleans up killed pushes' temporary files there.
    const posixCalls: Calls = { lists: [] };
    const posixRepo = repositoryOn(recorded(new PosixStorage(dir), posixCalls, {}), dir);
    assert.equal((await pushWalFile(posixRepo, stanza, '00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'), { compression: 'none' })).status, 'already-archived');
    assert.deepEqual(posixCalls.lists.map((c) => c.opts?.prefix), [undefined]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
