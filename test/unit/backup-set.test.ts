// A backup set written and read back through the posix driver: small files in
// bundles, large ones streamed, every file verified on the way back; a flipped
// stored byte and a hostile manifest path are refused by path.

import { test, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { buffer as collect } from 'node:stream/consumers';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { BackupSetWriter } from '../../src/repo/backup-set/writer.js';
import { BackupSetReader, bundledLast } from '../../src/repo/backup-set/reader.js';
import { parseManifest } from '../../src/repo/backup-set/manifest.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 9)) & 0xff;
  return b;
}

async function writeSet(compression: 'none' | 'zstd' | 'lz4' | 'gzip') {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-set-'));
  roots.push(root);
  const storage = new PosixStorage(root);
  const w = new BackupSetWriter({ storage, dir: 'main/backup/X', backupId: 'X', compression, bundleFileMax: 1000, bundleSize: 3000, parallel: 2 });
  const files = new Map<string, Buffer>();
  w.addDirectory('base', 0o700);
  w.addDirectory('base/1', 0o700);
  for (let i = 0; i < 12; i++) {
    const data = pattern(i * 90, i);
    files.set(`base/1/${i}`, data);
    await w.addSmallFile({ path: `base/1/${i}`, size: data.length, mode: 0o600, mtime: 1_700_000_000 }, data);
  }
  for (let i = 0; i < 3; i++) {
    const data = pattern(300_000 + i, 100 + i);
    files.set(`base/1/big${i}`, data);
    await w.addLargeFile({ path: `base/1/big${i}`, size: data.length, mode: 0o600, mtime: 1_700_000_000 }, Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
  }
  w.addTablespace(16385, '/srv/ts1');
  await w.addServerManifest([Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}')]);
  const m = await w.finish();
  return { root, storage, files, m };
}

test('every file comes back byte for byte, for each compression; small files share bundles', async () => {
  for (const compression of ['none', 'zstd', 'lz4', 'gzip'] as const) {
    const { root, storage, files, m } = await writeSet(compression);
    assert.equal(m.files.length, 15);
    const bundles = readdirSync(join(root, 'main/backup/X/bundle')).length;
    assert.ok(bundles >= 1 && bundles < 12, `12 small files in ${bundles} bundles`);
    const r = await BackupSetReader.open(storage, 'main/backup/X');
    for (const f of r.manifest.files) assert.ok((await collect(await r.read(f))).equals(files.get(f.path)!), `${compression} ${f.path}`);
    assert.deepEqual(r.manifest.tablespaces, [{ oid: 16385, location: '/srv/ts1' }]);
    // Where a bundled file is stored, for messages: the bundle's own name, extension included.
    const bundled = r.manifest.files.find((f) => 'bundle' in f.stored)!;
    assert.match(r.storedLocation(bundled), new RegExp(`bundle/\\d+${compression === 'none' ? '' : `\\.${compression === 'gzip' ? 'gz' : compression === 'zstd' ? 'zst' : 'lz4'}`}" \\(bytes `), compression);
  }
});

test('a flipped byte in a stored object or a bundle fails the read, naming the file and where it is stored', async () => {
  const { root, storage } = await writeSet('none');
  const big = join(root, 'main/backup/X/data/base/1/big1');
  const b = readFileSync(big);
  b[1234] ^= 1;
  writeFileSync(big, b);
  const bundle = join(root, 'main/backup/X/bundle/1');
  const c = readFileSync(bundle);
  c[10] ^= 1;
  writeFileSync(bundle, c);
  const r = await BackupSetReader.open(storage, 'main/backup/X');
  const bigEntry = r.manifest.files.find((f) => f.path === 'base/1/big1')!;
  await assert.rejects(async () => collect(await r.read(bigEntry)), /stored file .*data\/base\/1\/big1" of "base\/1\/big1" is damaged: XXH3-128/);
  const inBundle = r.manifest.files.find((f) => 'bundle' in f.stored && f.stored.bundle === 1 && f.stored.offset <= 10 && f.stored.offset + f.stored.length > 10)!;
  await assert.rejects(async () => collect(await r.read(inBundle)), /bundle\/1" \(bytes .*is damaged/);
});

test('a set written before XXH3-128 (format 1, SHA-256 per file) reads back and is checked by its SHA-256', async () => {
  const { root, storage, files } = await writeSet('zstd');
  const path = join(root, 'main/backup/X/manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(m.format_version, 4);
  m.format_version = 1;
  delete m.manifest_sha256;
  for (const f of m.files) {
    delete f.xxh128;
    f.sha256 = createHash('sha256').update(files.get(f.path)!).digest('hex');
  }
  // One recorded wrongly: its read fails naming SHA-256.
  m.files.find((f: { path: string }) => f.path === 'base/1/big2').sha256 = '0'.repeat(64);
  writeFileSync(path, JSON.stringify(m));
  const r = await BackupSetReader.open(storage, 'main/backup/X');
  for (const f of r.manifest.files) {
    if (f.path === 'base/1/big2') await assert.rejects(async () => collect(await r.read(f)), /is damaged: SHA-256 [0-9a-f]{64} instead of 0{64}/);
    else assert.ok((await collect(await r.read(f))).equals(files.get(f.path)!), f.path);
  }
  // A format 1 entry with no SHA-256 is not one pgpitr wrote.
  m.files[0].xxh128 = 'a'.repeat(32);
  delete m.files[0].sha256;
  assert.throws(() => parseManifest(JSON.stringify(m), 'test manifest'), /has no valid SHA-256/);
});

test('a set without its manifest is not a backup; a manifest path with ".." or "/" is refused', async () => {
  const { root, storage } = await writeSet('zstd');
  await assert.rejects(BackupSetReader.open(storage, 'main/backup/none'), (e: { code: string }) => e.code === 'ERR_NOT_FOUND');
  const text = readFileSync(join(root, 'main/backup/X/manifest.json'), 'utf8');
  for (const evil of ['../../etc/passwd', '/etc/passwd', 'base//1']) {
    const m = JSON.parse(text);
    m.files[0].path = evil;
    // Its checksum made again for the change: the path itself is what is refused.
    delete m.manifest_sha256;
    m.format_version = 3;
    assert.throws(() => parseManifest(JSON.stringify(m), 'test manifest'), (e: { code: string; message: string }) => e.code === 'ERR_UNSAFE_PATH' && e.message.includes(evil));
  }
});

test('a manifest with one changed byte (a path, a size) is refused by its own checksum, before any file is read', async () => {
  const { root, storage } = await writeSet('zstd');
  const path = join(root, 'main/backup/X/manifest.json');
  const text = readFileSync(path, 'utf8');
  assert.match(text, /^\{"manifest_sha256":"[0-9a-f]{64}","format":"pgpitr-backup-manifest","format_version":4,/);
  assert.equal((await BackupSetReader.open(storage, 'main/backup/X')).manifest.format_version, 4);
  const at = text.indexOf('"base/1/big1"') + 10;
  const flipped = text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ 1) + text.slice(at + 1);
  writeFileSync(path, flipped);
  await assert.rejects(BackupSetReader.open(storage, 'main/backup/X'), (e: { code: string; message: string }) => e.code === 'ERR_STORAGE' && /checksum does not match its content/.test(e.message));
  // Format 4 without its checksum (the member's name damaged) is refused too.
  writeFileSync(path, text.replace('"manifest_sha256"', '"manifest_sha257"'));
  await assert.rejects(BackupSetReader.open(storage, 'main/backup/X'), /has no checksum of its own/);
});

test('on storage with no local files, each bundle is read once for all its files, in bundle order', async () => {
  for (const compression of ['none', 'zstd'] as const) {
    const { storage, files } = await writeSet(compression);
    const reads: string[] = [];
    // The posix driver seen as object storage: no local paths, every read counted.
    const remote = Object.create(storage) as PosixStorage;
    Object.defineProperty(remote, 'features', { value: { ...storage.features, localPaths: false } });
    remote.read = (path, opts) => {
      reads.push(path);
      return storage.read(path, opts);
    };
    const r = await BackupSetReader.open(remote, 'main/backup/X');
    const order = bundledLast(r.manifest.files);
    const bundled = order.filter((f) => 'bundle' in f.stored);
    assert.ok(order.slice(0, order.length - bundled.length).every((f) => 'object' in f.stored), 'unbundled files first');
    const ids = bundled.map((f) => (f.stored as { bundle: number }).bundle);
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'bundles in order');
    await Promise.all(order.map(async (f) => assert.ok((await collect(await r.read(f))).equals(files.get(f.path)!), `${compression} ${f.path}`)));
    const bundleReads = reads.filter((p) => p.includes('/bundle/'));
    assert.equal(bundleReads.length, new Set(bundleReads).size, `each bundle read once: ${bundleReads.join(', ')}`);
    assert.equal(new Set(bundleReads).size, new Set(bundled.filter((f) => (f.stored as { length: number }).length > 0).map((f) => (f.stored as { bundle: number }).bundle)).size);
  }
});

test('on storage with no local files, a bundle some of whose files are not read (released) is dropped once the others are', async () => {
  const { storage, files } = await writeSet('zstd');
  const remote = Object.create(storage) as PosixStorage;
  Object.defineProperty(remote, 'features', { value: { ...storage.features, localPaths: false } });
  const r = await BackupSetReader.open(remote, 'main/backup/X');
  const bundled = bundledLast(r.manifest.files).filter((f) => 'bundle' in f.stored && f.stored.length > 0);
  const skipped = new Set<string>();
  for (const f of bundled) {
    const b = (f.stored as { bundle: number }).bundle;
    if (![...skipped].some((p) => (r.manifest.files.find((x) => x.path === p)!.stored as { bundle: number }).bundle === b)) {
      skipped.add(f.path);
      r.release(f); // before its bundle is read, or (the second bundle's) after
    }
  }
  for (const f of bundled) if (!skipped.has(f.path)) assert.ok((await collect(await r.read(f))).equals(files.get(f.path)!), f.path);
  assert.equal(r['bundles'].size, 0, 'no bundle held once the files to read have been');
  // A released file read after all still comes back whole.
  const late = bundled.find((f) => skipped.has(f.path))!;
  assert.ok((await collect(await r.read(late))).equals(files.get(late.path)!));
  assert.equal(r['bundles'].size, 0);
});

test('listRecords: a record that does not parse is listed as damaged; one that cannot be read fails the listing', async () => {
  const { listRecords } = await import('../../src/repo/backup-set/record.js');
  const { mkdirSync } = await import('node:fs');
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-records-'));
  try {
    const storage = new PosixStorage(root);
    mkdirSync(join(root, 'main', 'backup', '20261201-000000F'), { recursive: true });
    writeFileSync(join(root, 'main', 'backup', '20261201-000000F', 'backup.json'), '{"format": "pgpitr-back');
    const listed = await listRecords(storage, 'main');
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.state, 'failed');
    assert.equal(listed[0]!.damaged, true);
    // A read error (here: a directory where the record should be) says nothing of the backup.
    mkdirSync(join(root, 'main', 'backup', '20261202-000000F', 'backup.json'), { recursive: true });
    await assert.rejects(() => listRecords(storage, 'main'), (e: Error) => !/is damaged/.test(e.message));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
