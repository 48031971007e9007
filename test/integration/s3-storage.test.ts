// The S3 driver against the storage contract, on the tests' S3 server (s3rver
// in a child process, test/helpers/s3-server.ts): over HTTP (path style), over
// HTTPS with a test CA, and host style (virtual-host buckets) through
// storageHost. Then the driver's faults, each with a clear error: wrong
// credentials (key id, secret), a missing bucket, an untrusted certificate, 503s for a while
// (retried) and for ever (bounded), the server killed mid multipart write, a
// GET body cut midway (resumed, bytes identical).
//
// The driver's sizes are shrunk (5 MiB parts, pages of 100 keys, 5 ms retry
// base) so that multipart uploads, pages and retries happen cheaply.

import { buffer as collect } from 'node:stream/consumers';
import { test, before, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openS3Storage } from '../../src/storage/s3/s3-storage.js';
import type { S3StorageSettings } from '../../src/storage/s3/s3-settings.js';
import type { S3Tuning } from '../../src/storage/s3/s3-tuning.js';
import { readAll } from '../../src/storage/storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { storageContract } from '../helpers/storage-contract.js';
import { startS3Server } from '../helpers/s3-server.js';
import type { S3TestServer } from '../helpers/s3-server.js';
import { makeTestCertificates } from '../helpers/tls-certs.js';
import type { TestCertificates } from '../helpers/tls-certs.js';

const MiB = 1024 * 1024;
const TUNING: Partial<S3Tuning> = { partSize: 5 * MiB, listPageSize: 100, deleteBatch: 100, retryBaseDelayMs: 5 };

let certs: TestCertificates;
let plain: S3TestServer;
let secure: S3TestServer;
const opened: Storage[] = [];
let prefixes = 0;

before(async () => {
  certs = await makeTestCertificates('s3-client', ['s3.pgpitr.test', '*.s3.pgpitr.test']);
  [plain, secure] = await Promise.all([startS3Server(), startS3Server({ tls: { cert: certs.serverCert, key: certs.serverKey } })]);
});

after(async () => {
  for (const s of opened) await s.close?.().catch(() => {});
  await Promise.all([plain?.stop(), secure?.stop()]);
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

async function open(settings: S3StorageSettings, tuning: Partial<S3Tuning> = TUNING): Promise<Storage> {
  const s = await openS3Storage(settings, tuning);
  opened.push(s);
  return s;
}

/** Each contract test gets its own prefix in the bucket: nothing is shared between tests. */
const fresh = () => `repo/t${++prefixes}`;

storageContract('s3 over http, path style', () => open(plain.settings({ prefix: fresh() })));
storageContract('s3 over https with a CA file', () => open(secure.settings({ prefix: fresh(), caFile: certs.caCert })));
storageContract('s3 over https, host style through storageHost', () =>
  open(
    secure.settings({
      prefix: fresh(),
      caFile: certs.caCert,
      uriStyle: 'host',
      endpoint: `https://s3.pgpitr.test:${secure.port}`,
      storageHost: '127.0.0.1',
    }),
  ),
);

/** A PgpitrError of code whose message matches. */
function failsWith(code: string, message: RegExp) {
  return (e: { code?: string; message?: string }) => {
    assert.equal(e.code, code, e.message);
    assert.match(e.message ?? '', message);
    return true;
  };
}

test('s3: a key id the server does not know is refused, naming the repository and the fix', async () => {
  const s = await open(plain.settings({ prefix: fresh(), credentials: { accessKeyId: 'WRONGKEY', secretAccessKey: 'x' } }));
  await assert.rejects(s.write('a', Buffer.from('x')), failsWith('ERR_CONNECTION', /refused the credentials of repo1 to write s3:\/\/bkt\/repo\/t\d+\/a: InvalidAccessKeyId/));
  await assert.rejects(s.read('a'), (e: { hint?: string }) => /repo1-s3-key/.test(e.hint ?? ''));
});

test('s3: a wrong secret is refused (the test server checks SigV4 signatures), naming the repository and the fix', async () => {
  const s = await open(plain.settings({ prefix: fresh(), credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'not-the-secret' } }));
  await assert.rejects(s.write('a', Buffer.from('x')), failsWith('ERR_CONNECTION', /refused the credentials of repo1 to write s3:\/\/bkt\/repo\/t\d+\/a: SignatureDoesNotMatch/));
  await assert.rejects(s.list(''), failsWith('ERR_CONNECTION', /SignatureDoesNotMatch/));
  // A HEAD's 403 has no body: the driver asks again with a one-byte GET, whose answer says why.
  await assert.rejects(s.info('a'), failsWith('ERR_CONNECTION', /refused the credentials of repo1 to read information about s3:\/\/bkt\/repo\/t\d+\/a: SignatureDoesNotMatch/));
});

test('s3: a missing bucket has its own error, for a HEAD (no body to tell) as for the other requests', async () => {
  const s = await open(plain.settings({ bucket: 'no-such-bucket' }));
  const missing = failsWith('ERR_STORAGE', /bucket "no-such-bucket" does not exist at http:\/\/127\.0\.0\.1:\d+ \(repo1\)/);
  await assert.rejects(s.info('stanza/pgpitr-stanza.json'), missing);
  await assert.rejects(s.read('x'), missing);
  await assert.rejects(s.list('x'), missing);
  await assert.rejects(s.write('x', Buffer.from('x')), missing);
  assert.equal(await s.info(''), null, 'the root of a missing bucket is nothing');
});

test('s3: a certificate the client does not trust is refused, naming the CA file option', async () => {
  for (const caFile of [undefined, certs.otherCaCert]) {
    const s = await open(secure.settings({ prefix: fresh(), ...(caFile ? { caFile } : {}) }));
    await assert.rejects(s.write('a', Buffer.from('x')), (e: { code?: string; message?: string; hint?: string }) => {
      assert.equal(e.code, 'ERR_CONNECTION');
      assert.match(e.message ?? '', /certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);
      assert.match(e.hint ?? '', /repo1-storage-ca-file/);
      return true;
    });
  }
  // verifyTls false: accepted without a CA (what storage-verify-tls=n is for).
  const unchecked = await open(secure.settings({ prefix: fresh(), verifyTls: false }));
  await unchecked.write('a', Buffer.from('x'));
});

test('s3: 503s (and 408s) for a while are retried and the request succeeds', async () => {
  const s = await open(plain.settings({ prefix: fresh() }));
  const before = (await plain.faultCounters()).failed;
  await plain.faults({ status: 503, count: 4 });
  await s.write('w', Buffer.from('written through 503s'));
  await plain.faults({ status: 503, count: 3 });
  assert.equal((await readAll(s, 'w'))?.toString(), 'written through 503s');
  await plain.faults({ status: 408, count: 2 });
  assert.equal((await s.list('')).length, 1);
  assert.equal((await plain.faultCounters()).failed - before, 9);
});

test('s3: a PUT whose answer is lost is retried; an exclusive one then finds its own object and succeeds', async () => {
  const s = await open(plain.settings({ prefix: fresh() }));
  const before = (await plain.faultCounters()).dropped;
  await plain.faults({ dropResponse: 'PUT', count: 1 });
  await s.write('lock', Buffer.from('mine'), { exclusive: true });
  assert.equal((await plain.faultCounters()).dropped - before, 1);
  assert.equal((await readAll(s, 'lock'))?.toString(), 'mine');
  // Someone else's object is still someone else's.
  await assert.rejects(s.write('lock', Buffer.from('other'), { exclusive: true }), (e: { code?: string }) => e.code === 'ERR_TARGET');
  await plain.faults({ dropResponse: 'PUT', count: 1 });
  await assert.rejects(s.write('lock', Buffer.from('other'), { exclusive: true }), (e: { code?: string }) => e.code === 'ERR_TARGET');
  await plain.faults({ dropResponse: 'PUT', count: 1 });
  await s.write('plain', Buffer.from('replayed'));
  assert.equal((await readAll(s, 'plain'))?.toString(), 'replayed');
});

test('s3: the parts of a multipart upload (streamed bodies) are sent again whole through 503s and lost answers', async () => {
  for (const server of [plain, secure]) {
    const s = await open(server.settings({ prefix: fresh(), caFile: certs.caCert }));
    const data = Buffer.alloc(17 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const before = await server.faultCounters();
    await server.faults({ status: 503, count: 3 });
    await s.write('big-buffer', data);
    await server.faults({ dropResponse: 'PUT', count: 2 });
    async function* chunks() {
      for (let i = 0; i < data.length; i += 300_000) yield data.subarray(i, i + 300_000);
    }
    await s.write('big-stream', chunks());
    await server.faults({ dropResponse: 'PUT', count: 1 });
    await s.write('hinted-stream', chunks(), { size: data.length });
    const after = await server.faultCounters();
    assert.equal(after.failed - before.failed, 3);
    assert.equal(after.dropped - before.dropped, 3);
    for (const name of ['big-buffer', 'big-stream', 'hinted-stream']) assert.ok((await readAll(s, name))?.equals(data), `${name} over ${server.endpoint}`);
    assert.deepEqual(server.uploadsLeft(), []);
  }
});

test('s3: a server that answers 503 for ever fails the request after the attempts, in bounded time', async () => {
  const s = await open(plain.settings({ prefix: fresh() }));
  await plain.faults({ status: 503, forMs: 60_000 });
  const t0 = Date.now();
  try {
    await assert.rejects(s.write('w', Buffer.from('never')), failsWith('ERR_CONNECTION_LOST', /failed to write s3:\/\/bkt\/repo\/t\d+\/w after 8 attempts \(HTTP 503/));
  } finally {
    await plain.faults({});
  }
  assert.ok(Date.now() - t0 < 10_000, `gave up after ${Date.now() - t0} ms`);
});

test('s3: an unreachable endpoint fails after the attempts, naming it', async () => {
  const s = await open(plain.settings({ endpoint: 'http://127.0.0.1:9' }));
  await assert.rejects(s.info('x'), failsWith('ERR_CONNECTION', /http:\/\/127\.0\.0\.1:9 is unreachable after 8 attempts \(ECONNREFUSED\)/));
});

test('s3: a failing source aborts the multipart upload: no object, no upload left', async () => {
  const s = await open(plain.settings({ prefix: fresh() }));
  async function* failing() {
    for (let i = 0; i < 12; i++) yield Buffer.alloc(MiB, i);
    throw new Error('source failed after 12 MiB');
  }
  await assert.rejects(s.write('big', failing(), { size: 20 * MiB }), /source failed after 12 MiB/);
  assert.equal(await s.info('big'), null);
  assert.deepEqual(plain.uploadsLeft(), []);
});

test('s3: an exclusive write larger than a part is one conditional PUT: stored whole, and refused once the object exists', async () => {
  // A backup set's manifest of a cluster with tens of thousands of files is larger than a part (5 MiB here).
  const s = await open(plain.settings({ prefix: fresh() }));
  const big = Buffer.alloc(6 * MiB);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
  await s.write('x', big, { exclusive: true });
  assert.ok((await readAll(s, 'x'))?.equals(big));
  async function* twoParts() {
    yield big.subarray(0, 3 * MiB);
    yield big.subarray(3 * MiB);
  }
  await s.write('y', twoParts(), { exclusive: true });
  assert.ok((await readAll(s, 'y'))?.equals(big));
  await assert.rejects(s.write('x', twoParts(), { exclusive: true, size: 6 * MiB }), /already exists/);
  await assert.rejects(s.write('y', big, { exclusive: true }), /already exists/);
  assert.ok((await readAll(s, 'y'))?.equals(big));
  assert.deepEqual(plain.uploadsLeft(), []);
});

test('s3: a store refusing DeleteObjects (it wants a Content-MD5) has its objects removed one by one', async () => {
  const s = await open(plain.settings({ prefix: fresh() }));
  for (const n of ['a', 'b', 'd/c', 'd/e']) await s.write(n, Buffer.from(n));
  await plain.faults({ batchDeleteRefused: true });
  try {
    await s.removeMany(['a', 'b', 'missing']);
    await s.remove('d', { recursive: true });
    assert.deepEqual(await s.list('', { recursive: true }), []);
  } finally {
    await plain.faults({});
  }
});

test('s3: a GET body cut midway is resumed from the bytes delivered; the bytes are identical', async () => {
  const s = await open(plain.settings({ prefix: fresh() }));
  const data = Buffer.alloc(3 * MiB + 5);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, Math.min(i, data.length - 4));
  await s.write('obj', data);
  const cutBefore = (await plain.faultCounters()).cut;
  await plain.faults({ resetAfterBytes: MiB, count: 2 });
  const back = await readAll(s, 'obj');
  assert.equal((await plain.faultCounters()).cut - cutBefore, 2, 'two bodies were cut');
  assert.equal(createHash('sha256').update(back!).digest('hex'), createHash('sha256').update(data).digest('hex'));
  // A range, cut once.
  await plain.faults({ resetAfterBytes: 100_000, count: 1 });
  const range = await s.read('obj', { offset: 1000, length: 2 * MiB });
  const parts: Buffer[] = [];
  for await (const c of range!) parts.push(c as Buffer);
  assert.ok(Buffer.concat(parts).equals(data.subarray(1000, 1000 + 2 * MiB)));
  // Cut more often than the driver resumes: an error, not short data.
  await plain.faults({ resetAfterBytes: 10_000, count: 10 });
  try {
    await assert.rejects(readAll(s, 'obj'), (e: { code?: string }) => e.code === 'ERR_CONNECTION_LOST');
  } finally {
    await plain.faults({});
  }
});

test('s3: a store that ignores Range (200 with the whole object) or answers another range is an error naming it, never bytes from the wrong offset', async () => {
  const s = await open(plain.settings({ prefix: fresh() }));
  await s.write('obj', Buffer.from('0123456789'));
  await plain.faults({ ignoreRange: true });
  try {
    await assert.rejects(
      async () => collect((await s.read('obj', { offset: 4, length: 3 }))!),
      (e: { code?: string; message: string }) => e.code === 'ERR_STORAGE' && /ignores Range requests/.test(e.message),
    );
    assert.equal((await readAll(s, 'obj'))!.toString(), '0123456789'); // a whole read asks for no range
  } finally {
    await plain.faults({});
  }
  assert.equal((await collect((await s.read('obj', { offset: 4, length: 3 }))!)).toString(), '456');
  // One that answers another range than asked (206, its Content-Range saying which): an error too.
  await plain.faults({ shiftRange: 2 });
  try {
    await assert.rejects(
      async () => collect((await s.read('obj', { offset: 4, length: 3 }))!),
      (e: { code?: string; message: string }) => e.code === 'ERR_STORAGE' && /answered a read of bytes=4-6 with "bytes 6-8\/10", another range/.test(e.message),
    );
  } finally {
    await plain.faults({});
  }
  assert.equal((await collect((await s.read('obj', { offset: 8, length: 5 }))!)).toString(), '89', 'a range past the end of the object: up to its end');
});

test('s3: the server killed mid multipart write: the write fails, no object is visible, a rerun works', async () => {
  const server = await startS3Server();
  try {
    const s = await open(server.settings({ prefix: 'r' }));
    async function* source(killAt: number | null) {
      for (let i = 0; i < 16; i++) {
        if (i === killAt) await server.kill();
        yield Buffer.alloc(MiB, i);
      }
    }
    await assert.rejects(s.write('base/file', source(12), { size: 16 * MiB }), (e: { code?: string; message?: string }) => {
      assert.ok(e.code === 'ERR_CONNECTION' || e.code === 'ERR_CONNECTION_LOST', `${e.code}: ${e.message}`);
      assert.match(e.message ?? '', /s3:\/\/bkt\/r\/base\/file|127\.0\.0\.1/);
      return true;
    });
    await server.restart();
    assert.equal(await s.info('base/file'), null, 'no object after a failed multipart upload');
    assert.deepEqual(await s.list('base', { recursive: true }), []);
    await s.write('base/file', source(null), { size: 16 * MiB });
    const back = await readAll(s, 'base/file');
    assert.equal(back?.length, 16 * MiB);
    assert.equal(back?.[15 * MiB], 15);
  } finally {
    await server.stop();
  }
});

test('s3: loading the driver and a first request print nothing (no SDK warning on stderr)', () => {
  const script = `
    const { openS3Storage } = await import(${JSON.stringify(new URL('../../src/storage/s3/s3-storage.js', import.meta.url).href)});
    const s = await openS3Storage(${JSON.stringify(plain.settings({ prefix: 'quiet' }))});
    await s.write('x', Buffer.from('x'));
    await s.close();
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, '');
});
