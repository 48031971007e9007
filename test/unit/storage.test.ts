// The posix driver against the storage contract, its own promises (absolute
// root, modes, no temporary files left), and the one-pass filter pipeline.

import { test, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, statSync, readdirSync, readFileSync, writeFileSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { applyFilters } from '../../src/storage/filter/filter.js';
import { sha256Filter, sizeFilter } from '../../src/storage/filter/measure-filters.js';
import { compressFilter, decompressFilter } from '../../src/storage/filter/compress-filter.js';
import { storageContract } from '../helpers/storage-contract.js';
import { writeFileAtomicSync } from '../../src/storage/durable.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
function newRoot(): string {
  const r = mkdtempSync(join(tmpdir(), 'pgpitr-storage-'));
  roots.push(r);
  return r;
}

storageContract('posix', async () => new PosixStorage(newRoot()));

test('posix: a relative root is refused with the absolute path in the hint', () => {
  assert.throws(() => new PosixStorage('repo'), (e: { code?: string; hint?: string }) => e.code === 'ERR_USAGE' && /absolute/.test(e.hint ?? ''));
});

test('posix: files 0640 and directories 0750 by default, and no temporary file left', async () => {
  const root = newRoot();
  const s = new PosixStorage(root);
  await s.write('x/y/z', Buffer.from('data'));
  assert.equal(statSync(join(root, 'x/y/z')).mode & 0o777, 0o640);
  assert.equal(statSync(join(root, 'x/y')).mode & 0o777, 0o750);
  assert.deepEqual(readdirSync(join(root, 'x/y')), ['z']);
  await s.write('x/y/m', Buffer.from('data'), { mode: 0o600 });
  assert.equal(statSync(join(root, 'x/y/m')).mode & 0o777, 0o600);
});

test('posix: info reports a link as a link, not what it points to', async () => {
  const root = newRoot();
  writeFileSync(join(root, 'target'), 'x');
  symlinkSync(join(root, 'target'), join(root, 'lnk'));
  const s = new PosixStorage(root);
  assert.equal((await s.info('lnk'))?.type, 'link');
});

test('posix: a directory not made yet lists as empty; a link to nothing or a file in its place is an error, not "empty"', async () => {
  const root = newRoot();
  const s = new PosixStorage(root);
  assert.deepEqual(await s.list('none'), []);
  assert.deepEqual(await s.list('none', { detail: false }), []);
  symlinkSync(join(root, 'unmounted', 'log'), join(root, 'moved'));
  writeFileSync(join(root, 'file'), 'x');
  for (const path of ['moved', 'file']) {
    for (const detail of [true, false]) await assert.rejects(s.list(path, { detail }), (e: Error) => new RegExp(`list directory .*${path}`).test(e.message), `${path}, detail ${detail}`);
  }
});

test('filters: size and SHA-256 of the original, compression, stored size, in one pass; read back through the decompressor', async () => {
  const s = new PosixStorage(newRoot());
  const original = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(50_000, i % 7)));
  for (const algorithm of ['gzip', 'lz4', 'zstd'] as const) {
    const f = applyFilters(Readable.from([original.subarray(0, 700_000), original.subarray(700_000)]), [
      sizeFilter(),
      sha256Filter(),
      compressFilter(algorithm),
      sizeFilter('stored-size'),
    ]);
    await s.write(`obj.${algorithm}`, f.output);
    await f.done;
    const r = f.results();
    assert.equal(r['size'], original.length);
    assert.equal(r['sha256'], createHash('sha256').update(original).digest('hex'));
    const stored = await s.info(`obj.${algorithm}`);
    assert.equal(r['stored-size'], stored?.size);
    assert.ok((stored?.size ?? Infinity) < original.length / 10, `${algorithm} compressed`);

    const back = applyFilters((await s.read(`obj.${algorithm}`))!, [decompressFilter(algorithm), sha256Filter()]);
    const restored = await collect(back.output);
    await back.done;
    assert.ok(restored?.equals(original));
    assert.equal(back.results()['sha256'], r['sha256']);
  }
});

test('filters: an error in the source reaches both the consumer and done', async () => {
  async function* failing(): AsyncIterable<Buffer> {
    yield Buffer.from('abc');
    throw new Error('disk read failed');
  }
  const s = new PosixStorage(newRoot());
  const f = applyFilters(failing(), [sha256Filter(), compressFilter('zstd')]);
  await assert.rejects(s.write('x', f.output), /disk read failed|premature|aborted/);
  await assert.rejects(f.done, /disk read failed/);
  assert.equal(await s.info('x'), null);
});

test('posix: the repository root is created only in a directory that exists (an unmounted file system is not papered over)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-root-'));
  try {
    await assert.rejects(new PosixStorage(join(dir, 'mnt', 'backup')).pathCreate(''), /cannot create ".*\/mnt\/backup": its parent directory ".*\/mnt" does not exist/);
    await new PosixStorage(join(dir, 'backup')).pathCreate('');
    assert.ok(existsSync(join(dir, 'backup')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeFileAtomicSync never writes through what its temporary name already is (a stale file, a planted link)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-atomic-'));
  try {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'untouched');
    symlinkSync(victim, join(dir, `f.tmp-${process.pid}`));
    writeFileAtomicSync(join(dir, 'f'), 'content');
    assert.equal(readFileSync(victim, 'utf8'), 'untouched');
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'content');
    assert.ok(!existsSync(join(dir, `f.tmp-${process.pid}`)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeFileAtomicSync gives the file the mode asked for, whatever the umask (0640 in a cluster with group access)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-mode-'));
  const was = process.umask(0o077);
  try {
    writeFileAtomicSync(join(dir, 'postgresql.auto.conf'), 'x = 1\n', false, 0o640);
    assert.equal((statSync(join(dir, 'postgresql.auto.conf')).mode & 0o777).toString(8), '640');
  } finally {
    process.umask(was);
    rmSync(dir, { recursive: true, force: true });
  }
});
