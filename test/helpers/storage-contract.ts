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

export function storageContract(driver: string, make: () => Promise<Storage>): void {
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
}
