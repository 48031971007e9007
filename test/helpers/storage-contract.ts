// One contract for every Storage driver: the same tests run against posix
// today and object storage later, so that the repository can rely on what the
// interface promises and not on a driver's kind.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { readAll } from '../../src/storage/storage.js';
import type { Storage } from '../../src/storage/storage.js';

async function* chunks(parts: Buffer[], failAfter?: number): AsyncIterable<Buffer> {
  let i = 0;
  for (const p of parts) {
    if (failAfter !== undefined && i++ === failAfter) throw new Error('source failed midway');
    yield p;
  }
}

export interface ContractOptions {
  /**
   * Bytes of the large-object tests: above the driver's part size, so that object storage makes
   * a multipart upload (default 11 MiB; the S3 tests set a 5 MiB part size).
   */
  largeSize?: number;
  /** Objects of the listing and removeMany tests: above the driver's page size (default 250). */
  manyObjects?: number;
}

/** A deterministic buffer of n bytes that differs at every offset class (so misplaced ranges show). */
function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32BE((Math.imul(i, 2654435761) + seed) >>> 0, i);
  return b;
}

/** Yields buf in pieces of size step. */
async function* pieces(buf: Buffer, step: number, failAt?: number): AsyncIterable<Buffer> {
  for (let off = 0; off < buf.length; off += step) {
    if (failAt !== undefined && off >= failAt) throw new Error('source failed midway');
    yield buf.subarray(off, Math.min(buf.length, off + step));
  }
}

export function storageContract(driver: string, make: () => Promise<Storage>, options: ContractOptions = {}): void {
  const largeSize = options.largeSize ?? 11 * 1024 * 1024;
  const many = options.manyObjects ?? 250;

  test(`${driver}: write, read back, info; missing objects read as null`, async () => {
    const s = await make();
    await s.write('a/b/one', Buffer.from('hello'));
    await s.write('a/two', chunks([Buffer.from('wor'), Buffer.from('ld')]));
    assert.equal((await readAll(s, 'a/b/one'))?.toString(), 'hello');
    assert.equal((await readAll(s, 'a/two'))?.toString(), 'world');
    const info = await s.info('a/two');
    assert.equal(info?.type, 'file');
    assert.equal(info?.size, 5);
    assert.equal(await s.info('a/none'), null);
    assert.equal(await s.read('a/none'), null);
    assert.equal(await readAll(s, 'nowhere/at/all'), null);
  });

  test(`${driver}: ranged reads`, async () => {
    const s = await make();
    await s.write('r', Buffer.from('0123456789'));
    const part = async (offset: number, length?: number) => {
      const stream = await s.read('r', { offset, ...(length === undefined ? {} : { length }) });
      const out: Buffer[] = [];
      for await (const c of stream!) out.push(c as Buffer);
      return Buffer.concat(out).toString();
    };
    assert.equal(await part(3, 4), '3456');
    assert.equal(await part(7), '789');
    assert.equal(await part(2, 0), '');
  });

  test(`${driver}: list, flat and recursive; a missing directory lists as empty`, async () => {
    const s = await make();
    await s.write('l/x', Buffer.from('1'));
    await s.write('l/sub/y', Buffer.from('22'));
    const flat = (await s.list('l')).map((e) => e.name).sort();
    if (s.features.directories) assert.deepEqual(flat, ['sub', 'x']);
    else assert.ok(flat.includes('x'));
    const deep = (await s.list('l', { recursive: true })).filter((e) => e.type === 'file');
    assert.deepEqual(deep.map((e) => `${e.name}:${e.size}`).sort(), ['sub/y:2', 'x:1']);
    assert.deepEqual(await s.list('no/such/dir'), []);
    // Without detail: the same names and types (what a look-up by name in a large directory uses).
    const names = (await s.list('l', { recursive: true, detail: false })).map((e) => `${e.name}:${e.type}`).sort();
    assert.deepEqual(names, (await s.list('l', { recursive: true })).map((e) => `${e.name}:${e.type}`).sort());
    assert.deepEqual(await s.list('no/such/dir', { detail: false }), []);
  });

  test(`${driver}: pathCreate makes an empty directory that lists and reads as one, when the driver has directories`, async () => {
    const s = await make();
    if (!s.features.directories || !s.pathCreate) return;
    await s.pathCreate('p/q/r');
    assert.equal((await s.info('p/q/r'))?.type, 'directory');
    assert.deepEqual(await s.list('p/q/r'), []);
    await s.pathCreate('p/q/r'); // again: nothing to do
    await s.write('p/q/r/f', Buffer.from('x'));
    assert.deepEqual((await s.list('p/q/r')).map((e) => e.name), ['f']);
  });

  test(`${driver}: pruneDirectory removes an empty directory only, and a write recreates it, when the driver has directories`, async () => {
    const s = await make();
    if (!s.features.directories) return;
    assert.ok(s.pruneDirectory, 'a driver with directories prunes them');
    await s.write('e/full/f', Buffer.from('x'));
    await s.pruneDirectory('e/full'); // not empty: stays
    assert.equal((await s.info('e/full/f'))?.size, 1);
    await s.remove('e/full/f');
    await s.pruneDirectory('e/full');
    assert.equal(await s.info('e/full'), null);
    await s.pruneDirectory('e/full'); // gone: nothing to do
    await s.write('e/full/g', Buffer.from('y'));
    assert.equal((await s.info('e/full/g'))?.size, 1);
  });

  test(`${driver}: exclusive writes never replace; plain writes replace`, async () => {
    const s = await make();
    await s.write('e', Buffer.from('first'), { exclusive: true });
    await assert.rejects(s.write('e', Buffer.from('second'), { exclusive: true }), (e: { code?: string }) => e.code === 'ERR_TARGET');
    assert.equal((await readAll(s, 'e'))?.toString(), 'first');
    await s.write('e', Buffer.from('third'));
    assert.equal((await readAll(s, 'e'))?.toString(), 'third');
  });

  test(`${driver}: an atomic write whose source fails leaves nothing behind`, async () => {
    const s = await make();
    await assert.rejects(s.write('dir/f', chunks([Buffer.alloc(1000, 1), Buffer.alloc(1000, 2)], 1)));
    assert.equal(await s.info('dir/f'), null);
    const left = (await s.list('dir', { recursive: true })).filter((e) => e.type === 'file');
    assert.deepEqual(left, [], 'no temporary object is left');
    // An existing object survives a failed replacement whole.
    await s.write('dir/g', Buffer.from('kept'));
    await assert.rejects(s.write('dir/g', chunks([Buffer.from('new')], 0)));
    assert.equal((await readAll(s, 'dir/g'))?.toString(), 'kept');
  });

  test(`${driver}: remove is idempotent, recursive removes a whole tree`, async () => {
    const s = await make();
    await s.write('t/a', Buffer.from('a'));
    await s.write('t/b/c', Buffer.from('c'));
    await s.remove('t/a');
    await s.remove('t/a');
    assert.equal(await s.info('t/a'), null);
    await s.remove('t', { recursive: true });
    assert.deepEqual(await s.list('t', { recursive: true }), []);
  });

  test(`${driver}: move replaces the target, when the driver has it`, async () => {
    const s = await make();
    if (!s.features.move || !s.move) return;
    await s.write('m/from', Buffer.from('moved'));
    await s.write('m2/to', Buffer.from('old'));
    await s.move('m/from', 'm2/to');
    assert.equal(await s.info('m/from'), null);
    assert.equal((await readAll(s, 'm2/to'))?.toString(), 'moved');
  });

  test(`${driver}: paths that could leave the storage are refused before any I/O`, async () => {
    const s = await make();
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a/.', 'a\0b']) {
      await assert.rejects(s.write(bad, Buffer.from('x')), (e: { code?: string }) => e.code === 'ERR_UNSAFE_PATH', bad);
      await assert.rejects(s.read(bad), (e: { code?: string }) => e.code === 'ERR_UNSAFE_PATH', bad);
      await assert.rejects(s.remove(bad, { recursive: true }), (e: { code?: string }) => e.code === 'ERR_UNSAFE_PATH', bad);
    }
  });

  test(`${driver}: a Readable source of many chunks is stored whole`, async () => {
    const s = await make();
    const parts = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * 1024, i));
    await s.write('big', Readable.from(parts));
    const back = await readAll(s, 'big');
    assert.ok(back?.equals(Buffer.concat(parts)));
  });

  test(`${driver}: the root reads as a directory`, async () => {
    const s = await make();
    assert.equal((await s.info(''))?.type, 'directory');
  });

  test(`${driver}: list with a name prefix, flat and recursive, with and without detail`, async () => {
    const s = await make();
    for (const name of ['w/000000010000000000000001-aa.zst', 'w/000000010000000000000001.partial', 'w/000000010000000000000002-bb', 'w/0000000100000000000000011', 'w/d1/x', 'w/d2/y', 'w/e/z'])
      await s.write(name, Buffer.from(name));
    const names = async (prefix: string, recursive = false, detail = true) =>
      (await s.list('w', { prefix, recursive, detail })).map((e) => `${e.name}:${e.type}`).sort();
    assert.deepEqual(await names('000000010000000000000001-'), ['000000010000000000000001-aa.zst:file']);
    assert.deepEqual(await names('000000010000000000000001-', false, false), ['000000010000000000000001-aa.zst:file']);
    assert.deepEqual(await names('000000010000000000000001'), [
      '000000010000000000000001-aa.zst:file',
      '000000010000000000000001.partial:file',
      '0000000100000000000000011:file',
    ]);
    assert.deepEqual(await names('d'), ['d1:directory', 'd2:directory']);
    assert.deepEqual(await names('nothing'), []);
    const deep = (await s.list('w', { prefix: 'd', recursive: true })).filter((e) => e.type === 'file').map((e) => `${e.name}:${e.size}`).sort();
    assert.deepEqual(deep, ['d1/x:6', 'd2/y:6']);
    const deeper = (await s.list('w', { prefix: 'd1/', recursive: true })).filter((e) => e.type === 'file').map((e) => e.name);
    assert.deepEqual(deeper, ['d1/x']);
    assert.deepEqual(await s.list('none', { prefix: 'x' }), []);
  });

  test(`${driver}: a listing of many objects is complete (past a page), and removeMany removes them`, async () => {
    const s = await make();
    const names = Array.from({ length: many }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < names.length; i += 25) await Promise.all(names.slice(i, i + 25).map((n) => s.write(n, Buffer.from(n))));
    await s.write('many/sub/kept', Buffer.from('k'));
    const flat = await s.list('many');
    assert.equal(flat.filter((e) => e.type === 'file').length, many);
    assert.deepEqual(flat.filter((e) => e.type === 'directory').map((e) => e.name), ['sub']);
    const named = await s.list('many', { recursive: true, detail: false });
    assert.deepEqual(new Set(named.filter((e) => e.type === 'file').map((e) => `many/${e.name}`)), new Set([...names, 'many/sub/kept']));
    // Removing names already gone, and the same name twice, is not an error.
    await s.removeMany([...names, names[0]!, 'many/never-written']);
    const left = (await s.list('many', { recursive: true })).filter((e) => e.type === 'file').map((e) => e.name);
    assert.deepEqual(left, ['sub/kept']);
    await s.removeMany([]);
  });

  test(`${driver}: a large object, with and without a size hint, is stored whole and reads in ranges`, async () => {
    const s = await make();
    const big = pattern(largeSize, 7);
    await s.write('large/hinted', pieces(big, 1024 * 1024 - 13), { size: big.length });
    await s.write('large/unhinted', Readable.from(pieces(big, 256 * 1024)));
    for (const name of ['large/hinted', 'large/unhinted']) {
      assert.equal((await s.info(name))?.size, big.length, name);
      assert.ok((await readAll(s, name))?.equals(big), name);
      const off = largeSize - 3 * 1024 * 1024 - 5;
      const range = await s.read(name, { offset: off, length: 2 * 1024 * 1024 + 9 });
      const chunks: Buffer[] = [];
      for await (const c of range!) chunks.push(c as Buffer);
      assert.ok(Buffer.concat(chunks).equals(big.subarray(off, off + 2 * 1024 * 1024 + 9)), `${name} range`);
    }
    // A small object with a (right) size hint, and an empty one.
    await s.write('large/small', Buffer.from('tiny'), { size: 4 });
    assert.equal((await readAll(s, 'large/small'))?.toString(), 'tiny');
    await s.write('large/empty', chunks([]));
    assert.equal((await s.info('large/empty'))?.size, 0);
    assert.equal((await readAll(s, 'large/empty'))?.length, 0);
  });

  test(`${driver}: a large write whose source fails past the first part leaves nothing, and keeps what was there`, async () => {
    const s = await make();
    const big = pattern(largeSize, 3);
    await assert.rejects(s.write('lf/new', pieces(big, 512 * 1024, largeSize - 1024 * 1024), { size: big.length }), /source failed midway/);
    assert.equal(await s.info('lf/new'), null);
    await s.write('lf/old', Buffer.from('old'));
    await assert.rejects(s.write('lf/old', pieces(big, 512 * 1024, largeSize - 1024 * 1024)), /source failed midway/);
    assert.equal((await readAll(s, 'lf/old'))?.toString(), 'old');
    const left = (await s.list('lf', { recursive: true })).filter((e) => e.type === 'file').map((e) => e.name);
    assert.deepEqual(left, ['old']);
  });

  test(`${driver}: of concurrent exclusive writers of one name exactly one wins, when the storage enforces it`, async () => {
    const s = await make();
    if (!s.features.conditionalCreate) return;
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => s.write('race/lock', Buffer.from(`writer ${i}`), { exclusive: true })));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, `winners: ${won.join(', ')}`);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'ERR_TARGET');
    assert.equal((await readAll(s, 'race/lock'))?.toString(), `writer ${won[0]}`);
  });

  test(`${driver}: close() releases the storage`, async () => {
    const s = await make();
    await s.write('c', Buffer.from('c'));
    await s.close?.();
  });
}
