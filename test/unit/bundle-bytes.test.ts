// A bundle's bytes copied into chunks of their own: offsets as added, files that span
// chunks, empty files counted, and the bundle empty once drained.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { BundleBytes } from '../../src/repo/backup-set/bundle-bytes.js';

test('the drained chunks are the files added, in order, whatever chunk they fell in', () => {
  const b = new BundleBytes();
  const files: Buffer[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < 700; i++) {
    const f = Buffer.alloc(i % 5 === 0 ? 0 : (i * 7919) % 9000, i & 0xff);
    offsets.push(b.bytes);
    // A view of a larger buffer, as a network chunk's is: only its own bytes go in.
    b.add(Buffer.concat([Buffer.alloc(3, 0xee), f, Buffer.alloc(5, 0xdd)]).subarray(3, 3 + f.length));
    files.push(f);
  }
  assert.equal(b.files, 700);
  const total = files.reduce((a, f) => a + f.length, 0);
  assert.ok(total > 2 * 1024 * 1024, 'spans chunks');
  assert.equal(b.bytes, total);
  const all = Buffer.concat([...b.drain()]);
  assert.equal(all.length, total);
  files.forEach((f, i) => assert.ok(all.subarray(offsets[i], offsets[i]! + f.length).equals(f), `file ${i}`));
  assert.deepEqual([...b.drain()], []);
  assert.equal(b.bytes, 0);
  assert.equal(b.files, 0);
});

test('a first file larger than the first chunk, and a bundle of one small file', () => {
  const big = Buffer.alloc(200 * 1024, 7);
  const b = new BundleBytes();
  b.add(Buffer.from('ab'));
  b.add(big);
  assert.ok(Buffer.concat([...b.drain()]).equals(Buffer.concat([Buffer.from('ab'), big])));
  const one = new BundleBytes();
  one.add(Buffer.from('xyz'));
  assert.deepEqual([...one.drain()].map((c) => c.toString()), ['xyz']);
});

test('a bundle of empty files has no bytes but its files', () => {
  const b = new BundleBytes();
  b.add(Buffer.alloc(0));
  b.add(Buffer.alloc(0));
  assert.equal(b.files, 2);
  assert.equal(b.bytes, 0);
  assert.deepEqual([...b.drain()], []);
});
