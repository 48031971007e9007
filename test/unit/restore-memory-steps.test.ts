// What restore changed to hold less memory with many files, checked for behaviour:
// readAllSized reads a whole object into one buffer (sized from info, growing past a
// short size, and through an encrypted repository whose stored size is larger), and
// delta's removeExtras, now keeping one map of paths, still removes exactly what the
// backup does not hold (a directory where the backup has a file included).

import { test, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { CipherStorage } from '../../src/storage/cipher/cipher-storage.js';
import { dataKeyOf, repositoryKeys } from '../../src/repo/repo-cipher.js';
import { readAllSized } from '../../src/storage/storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { removeExtras } from '../../src/restore/delta-extras.js';
import type { BackupSetManifest } from '../../src/repo/backup-set/manifest.js';
import { collectAfterPlan } from '../../src/common/full-collection.js';

const root = mkdtempSync(join(tmpdir(), 'pgpitr-memsteps-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('readAllSized: whole content, missing object, stored size larger or smaller than the content', async () => {
  const posix = new PosixStorage(join(root, 'plain'));
  const data = randomBytes(3 * 1024 * 1024 + 17);
  await posix.write('m/manifest.json', data, { atomic: true, sync: false });
  assert.ok((await readAllSized(posix, 'm/manifest.json'))!.equals(data));
  assert.equal(await readAllSized(posix, 'm/none.json'), null);
  const empty = Buffer.alloc(0);
  await posix.write('m/empty', empty, { atomic: true, sync: false });
  assert.equal((await readAllSized(posix, 'm/empty'))!.length, 0);

  const cipher = new CipherStorage(new PosixStorage(join(root, 'enc')), repositoryKeys(dataKeyOf(randomBytes(32), randomBytes(16).toString('hex'))));
  await cipher.write('m/manifest.json', data, { atomic: true, sync: false });
  assert.ok((await readAllSized(cipher, 'm/manifest.json'))!.equals(data));

  // A storage whose info says more than the content: the buffer is cut to what was read.
  const long: Storage = Object.create(posix) as Storage;
  long.info = async (p) => {
    const e = await posix.info(p);
    return e === null ? null : { ...e, size: e.size + 5000 };
  };
  const read = (await readAllSized(long, 'm/manifest.json'))!;
  assert.equal(read.length, data.length);
  assert.ok(read.equals(data));
  // A storage whose info says less than the content (a compressing driver): the buffer grows.
  const short: Storage = Object.create(posix) as Storage;
  short.info = async (p) => {
    const e = await posix.info(p);
    return e === null ? null : { ...e, size: 1000 };
  };
  short.read = async () => Readable.from([data.subarray(0, 600), data.subarray(600, 5000), data.subarray(5000)]);
  assert.ok((await readAllSized(short, 'm/manifest.json'))!.equals(data));
});

test('removeExtras: removes what the backup does not hold, a directory in place of a backup file, and keeps the rest', async () => {
  const target = join(root, 'target');
  mkdirSync(join(target, 'base', '5'), { recursive: true });
  mkdirSync(join(target, 'pg_tblspc'), { recursive: true });
  mkdirSync(join(target, 'global'), { recursive: true });
  writeFileSync(join(target, 'base', '5', '1000'), 'kept');
  writeFileSync(join(target, 'base', '5', '1001'), 'not in the backup');
  mkdirSync(join(target, 'base', '5', '1002', 'inner'), { recursive: true }); // the backup has a file here
  writeFileSync(join(target, 'global', 'pg_control'), 'x');
  mkdirSync(join(target, 'stray', 'deep'), { recursive: true });
  writeFileSync(join(target, 'stray', 'deep', 'f'), 'x');
  writeFileSync(join(target, 'restore.lock'), 'this restore');
  const file = (path: string) => ({ path, size: 1, mode: 0o600, mtime: 0 }) as unknown as BackupSetManifest['files'][number];
  const dir = (path: string) => ({ path, mode: 0o700 }) as unknown as BackupSetManifest['directories'][number];
  const m = {
    files: [file('base/5/1000'), file('base/5/1002'), file('global/pg_control')],
    directories: [dir('base'), dir('base/5'), dir('global'), dir('pg_tblspc')],
    tablespaces: [],
  } as unknown as BackupSetManifest;
  const removed = await removeExtras(m, { target, tablespaceDirs: new Map() }, (p) => join(target, p), [join(target, 'restore.lock')]);
  assert.equal(removed, 3);
  assert.ok(existsSync(join(target, 'base', '5', '1000')));
  assert.ok(!existsSync(join(target, 'base', '5', '1001')));
  assert.ok(!existsSync(join(target, 'base', '5', '1002')));
  assert.ok(!existsSync(join(target, 'stray')));
  assert.ok(existsSync(join(target, 'restore.lock')));
  assert.ok(statSync(join(target, 'global', 'pg_control')).isFile());
});

test('collectAfterPlan: with many files, a full collection frees what is no longer reachable (called twice: the collector is taken once)', () => {
  collectAfterPlan(10); // below the threshold: nothing asked for (not observable), nothing thrown
  let garbage: object[] | null = Array.from({ length: 400_000 }, (_, i) => ({ i, s: `entry ${i}` }));
  const before = process.memoryUsage().heapUsed;
  assert.ok(garbage.length > 0);
  garbage = null;
  collectAfterPlan(1_000_000);
  const after = process.memoryUsage().heapUsed;
  assert.ok(before - after > 10 * 1024 * 1024, `heap ${before} -> ${after}: the unreachable 400,000 objects were collected`);
  collectAfterPlan(1_000_000);
});
