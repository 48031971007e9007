// Encryption at rest (storage/cipher/, repo/repo-cipher.ts): the storage
// contract holds through the cipher; every size and range reads back exactly;
// a flipped byte, a truncated file, trailing bytes, a file swapped with
// another, a plaintext file and another repository's key are each detected and
// named; a wrong passphrase is one clear error; the marker and locks stay
// plaintext and nothing else does.

import { test, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buffer as collect } from 'node:stream/consumers';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { CipherStorage } from '../../src/storage/cipher/cipher-storage.js';
import { CHUNK_SIZE, HEADER_SIZE, TAG_SIZE, plainSize, storedSize } from '../../src/storage/cipher/object-format.js';
import { createCipherBlock, dataKeyOf, openCipherBlock, repositoryKeys } from '../../src/repo/repo-cipher.js';
import { readAll } from '../../src/storage/storage.js';
import { storageContract } from '../helpers/storage-contract.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));
function newRoot(): string {
  const r = mkdtempSync(join(tmpdir(), 'pgpitr-cipher-'));
  roots.push(r);
  return r;
}

const key1 = dataKeyOf(randomBytes(32), randomBytes(16).toString('hex'));
const key2 = dataKeyOf(randomBytes(32), randomBytes(16).toString('hex'));
function encrypted(root: string, key = key1): CipherStorage {
  return new CipherStorage(new PosixStorage(root), repositoryKeys(key));
}

storageContract('posix through the cipher', async () => encrypted(newRoot()));

test('sizes: stored and plaintext sizes convert both ways, and no other stored size is valid', () => {
  for (const n of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE, 5 * CHUNK_SIZE + 7]) {
    assert.equal(plainSize(storedSize(n)), n, String(n));
  }
  assert.equal(plainSize(HEADER_SIZE + TAG_SIZE - 1), null);
  assert.equal(plainSize(HEADER_SIZE + CHUNK_SIZE + TAG_SIZE + 3), null); // a second chunk shorter than its tag
});

test('every size reads back whole and in ranges, through chunk boundaries; info and list give plaintext sizes', async () => {
  const root = newRoot();
  const s = encrypted(root);
  for (const n of [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]) {
    const data = randomBytes(n);
    await s.write(`d/${n}`, n > 2000 ? (async function* () { for (let i = 0; i < n; i += 7777) yield data.subarray(i, i + 7777); })() : data);
    assert.ok((await readAll(s, `d/${n}`))!.equals(data), `whole ${n}`);
    assert.equal((await s.info(`d/${n}`))!.size, n);
    assert.equal(readFileSync(join(root, `d/${n}`)).length, storedSize(n));
    for (const [offset, length] of [[0, 1], [1, 10], [CHUNK_SIZE - 3, 6], [CHUNK_SIZE, CHUNK_SIZE], [n - 1, 1], [5, undefined], [CHUNK_SIZE + 1, undefined], [0, n]] as [number, number | undefined][]) {
      if (offset < 0 || offset >= n || (length !== undefined && offset + length > n)) continue;
      const got = await collect((await s.read(`d/${n}`, { offset, ...(length === undefined ? {} : { length }) }))!);
      assert.ok(got.equals(data.subarray(offset, length === undefined ? n : offset + length)), `range ${offset}+${length} of ${n}`);
    }
  }
  const listed = new Map((await s.list('d')).map((e) => [e.name, e.size]));
  assert.equal(listed.get(String(3 * CHUNK_SIZE + 5)), 3 * CHUNK_SIZE + 5);
  // The bytes on disk are not the plaintext.
  const plain = Buffer.from('a very recognisable plaintext '.repeat(100));
  await s.write('p', plain);
  assert.equal(readFileSync(join(root, 'p')).includes(Buffer.from('recognisable')), false);
});

test('damage of every kind is detected and named, before any byte of it is taken as good', async () => {
  const root = newRoot();
  const s = encrypted(root);
  const data = randomBytes(3 * CHUNK_SIZE + 100);
  const fresh = async (name: string) => {
    await s.write(name, data);
    return join(root, name);
  };
  const fails = async (name: string, re: RegExp) => {
    await assert.rejects(async () => collect((await s.read(name))!), (e: Error) => {
      assert.match(e.message, new RegExp(`stored object .*${name}" cannot be decrypted: `));
      assert.match(e.message, re);
      return true;
    });
  };
  const flip = async (name: string, at: number) => {
    const p = await fresh(name);
    const b = readFileSync(p);
    b[at] ^= 0x01;
    writeFileSync(p, b);
  };
  await flip('flip-body', HEADER_SIZE + CHUNK_SIZE + 20);
  await fails('flip-body', /chunk 1 fails authentication/);
  await flip('flip-tag', HEADER_SIZE + CHUNK_SIZE + TAG_SIZE - 1);
  await fails('flip-tag', /chunk 0 fails authentication/);
  await flip('flip-salt', 30);
  await fails('flip-salt', /chunk 0 fails authentication/);
  await flip('flip-pathtag', 50);
  await fails('flip-pathtag', /holds the object written as another file/);
  await flip('flip-keyid', 14);
  await fails('flip-keyid', /encrypted with another key/);
  truncateSync(await fresh('cut-boundary'), HEADER_SIZE + 2 * (CHUNK_SIZE + TAG_SIZE));
  await fails('cut-boundary', /truncated: 2 complete chunk\(s\) and no final chunk/);
  truncateSync(await fresh('cut-inside'), HEADER_SIZE + 2 * (CHUNK_SIZE + TAG_SIZE) + 50);
  await fails('cut-inside', /chunk 2 fails authentication/);
  truncateSync(await fresh('cut-header'), 20);
  await fails('cut-header', /shorter than an encrypted object's header/);
  appendFileSync(await fresh('trailing'), Buffer.from('more bytes, enough to look like something'));
  await fails('trailing', /data after its final chunk|fails authentication/);
  copyFileSync(await fresh('a'), join(root, 'b'));
  await fails('b', /holds the object written as another file \(swapped or renamed\)/);
  writeFileSync(join(root, 'plain'), 'not encrypted at all, but long enough to fill a header, and then some more bytes');
  await fails('plain', /not encrypted \(no pgpitr encryption header\)/);
  await encrypted(root, key2).write('other-repo', data);
  await fails('other-repo', /encrypted with another key .*another repository/);
  // A range read checks too.
  await assert.rejects(async () => collect((await s.read('flip-body', { offset: CHUNK_SIZE + 5, length: 10 }))!), /chunk 1 fails authentication/);
  // A range over chunks 0-2 of an object cut a few bytes into chunk 2: not the range's end, truncated.
  truncateSync(await fresh('cut-in-range'), HEADER_SIZE + 2 * (CHUNK_SIZE + TAG_SIZE) + 5);
  await assert.rejects(async () => collect((await s.read('cut-in-range', { offset: 10, length: 2 * CHUNK_SIZE + 10 }))!), /truncated|fails authentication/);
  // The same range of a whole object reads back, as does the one ending in chunk 1 of the cut one.
  assert.deepEqual(await collect((await s.read('a', { offset: 10, length: 2 * CHUNK_SIZE + 10 }))!), data.subarray(10, 2 * CHUNK_SIZE + 20));
  assert.deepEqual(await collect((await s.read('cut-in-range', { offset: 10, length: CHUNK_SIZE + 10 }))!), data.subarray(10, CHUNK_SIZE + 20));
});

test('the marker and locks stay plaintext, everything else is encrypted', async () => {
  const root = newRoot();
  const s = encrypted(root);
  await s.write('pgpitr-repo.json', Buffer.from('{"format":"pgpitr-repository"}'));
  await s.write('main/backup.lock', Buffer.from('{"pid":1}'));
  await s.write('main/stanza.json', Buffer.from('{"format":"pgpitr-stanza"}'));
  assert.equal(readFileSync(join(root, 'pgpitr-repo.json'), 'utf8'), '{"format":"pgpitr-repository"}');
  assert.equal(readFileSync(join(root, 'main/backup.lock'), 'utf8'), '{"pid":1}');
  assert.equal(readFileSync(join(root, 'main/stanza.json')).subarray(0, 6).toString(), 'PGPENC');
  // The repository's locks and their takeover guards only: a cluster's file named *.lock stored in a backup is data.
  const keys = repositoryKeys(dataKeyOf(randomBytes(32), '00'.repeat(16)));
  for (const plain of ['repository.lock', 'repository.lock.takeover.lock', 'main/backup.lock', 'main/backup.lock.takeover.lock']) assert.equal(keys.keyFor(plain), null, plain);
  for (const data of ['main/backup/20261201-000000F/data/base/1/app.lock', 'main/backup/20261201-000000F/data/x/backup.lock', 'main/archive/x.lock']) assert.notEqual(keys.keyFor(data), null, data);
});

test('the repository key is wrapped by the passphrase: the right one opens it, a wrong one is one clear error', async () => {
  const { block, key } = await createCipherBlock('correct horse battery staple');
  assert.equal(JSON.stringify(block).includes(key.toString('base64')), false);
  assert.ok((await openCipherBlock(block, 'correct horse battery staple', { label: 'repo1', location: '/r' })).equals(key));
  await assert.rejects(openCipherBlock(block, 'Correct horse battery staple', { label: 'repo1', location: '/r' }), (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.message, 'repo1-cipher-pass does not open repository /r: wrong passphrase, or the wrapped key in its marker pgpitr-repo.json was changed (both fail the same check)');
    assert.equal(e.code, 'ERR_USAGE');
    return true;
  });
  // A damaged or tampered marker is named as such, never handed to scrypt nor called a wrong passphrase.
  for (const bad of [{ kdf: { ...block.kdf, N: 2 ** 40 } }, { kdf: { ...block.kdf, r: 0 } }, { wrapped_key: 'AAAA' }, { key_id: 'zz' }]) {
    await assert.rejects(openCipherBlock({ ...block, ...bad } as typeof block, 'correct horse battery staple', { label: 'repo1', location: '/r' }), /encryption settings in repository marker \/r\/pgpitr-repo\.json are damaged/);
  }
});

test('an object whose path is over a kilobyte long is encrypted and reads back (its key named by the path\'s SHA-256)', async () => {
  const root = newRoot();
  const s = encrypted(root);
  const dirs = Array.from({ length: 9 }, (_, i) => `${String(i).repeat(120)}`).join('/');
  const path = `main/backup/20261201-000000F/data/${dirs}/file`;
  assert.ok(path.length > 1024);
  const data = randomBytes(100_000);
  await s.write(path, data);
  assert.equal(readFileSync(join(root, path)).subarray(0, 6).toString(), 'PGPENC');
  assert.ok((await readAll(s, path))!.equals(data));
});

test('incomplete multipart uploads are listed and aborted through the cipher, as on the storage below (check cleans them up)', async () => {
  const aborted: string[] = [];
  class WithUploads extends PosixStorage {
    async listUploads() {
      return [{ path: 'main/backup/x/big', uploadId: 'u1', initiatedMs: 1 }];
    }
    async abortUpload(u: { uploadId: string }) {
      aborted.push(u.uploadId);
    }
  }
  const s = new CipherStorage(new WithUploads(newRoot()), repositoryKeys(key1));
  assert.deepEqual(await s.listUploads!(), [{ path: 'main/backup/x/big', uploadId: 'u1', initiatedMs: 1 }]);
  await s.abortUpload!({ path: 'main/backup/x/big', uploadId: 'u1', initiatedMs: 1 });
  assert.deepEqual(aborted, ['u1']);
  assert.equal(encrypted(newRoot()).listUploads, undefined); // posix leaves none: not offered
});

test('a repository opened before it has a marker (out of reach at first use) reads with the key of the marker written since', async () => {
  const { openRepository } = await import('../../src/repo/open-repository.js');
  const { createStanza, readStanza } = await import('../../src/repo/stanza.js');
  const root = newRoot();
  const settings = { index: 1, type: 'posix' as const, path: root, cipher: { type: 'aes-256-gcm' as const, pass: 'correct horse battery staple' } };
  // A long-running process (a fetcher) uses it while there is no marker: a new key, not kept.
  const early = await openRepository(settings);
  await early.encryption!.block();
  assert.equal(await readAll(early.storage, 'main/stanza.json'), null);
  // stanza-create, by another process, writes the marker with its own key and a record under it.
  await createStanza(await openRepository(settings), { stanza: 'main', system_identifier: '7300000000000000002', pg_major: 16, wal_segment_size: 16 * 1024 * 1024 });
  assert.equal((await readStanza(early, 'main')).system_identifier, '7300000000000000002');
});

test('two first stanza-creates at once on a store ignoring exclusive create: the one whose key lost the marker says so and leaves no record', async () => {
  const { openRepository } = await import('../../src/repo/open-repository.js');
  const { createStanza } = await import('../../src/repo/stanza.js');
  const { writeRepoMarker } = await import('../../src/repo/repo-marker.js');
  const { existsSync } = await import('node:fs');
  const root = newRoot();
  const settings = { index: 1, type: 'posix' as const, path: root, cipher: { type: 'aes-256-gcm' as const, pass: 'correct horse battery staple' } };
  // Both see no marker, and each makes a key.
  const a = await openRepository(settings);
  const b = await openRepository(settings);
  await a.encryption!.block();
  const other = await b.encryption!.block();
  // b's marker lands while a writes its stanza record.
  const storage = a.storage;
  const racing = {
    ...a,
    storage: new Proxy(storage, {
      get(t, k) {
        if (k === 'write') {
          return async (path: string, ...rest: unknown[]) => {
            if (path.endsWith('stanza.json')) await writeRepoMarker(b.storage, { format: 'pgpitr-repository', format_version: 1, cipher: other });
            return (t.write as (...x: unknown[]) => Promise<void>).call(t, path, ...rest);
          };
        }
        const v = (t as unknown as Record<string | symbol, unknown>)[k];
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
      },
    }),
  };
  await assert.rejects(createStanza(racing, { stanza: 'main', system_identifier: '7300000000000000003', pg_major: 16, wal_segment_size: 16 * 1024 * 1024 }), /written at the same time by another stanza-create, with another key: stanza "main" was not created/);
  assert.equal(existsSync(join(root, 'main', 'stanza.json')), false);
});
