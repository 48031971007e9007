// The decoding of the sql read method's binary COPY (sql-file-read.ts): the
// rows' values copied in order into the caller's buffer whatever the CopyData
// boundaries, null for a file that is gone, and a short read when the file
// ended or was dropped midway.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { CopyRowsDecoder, SQL_ROW } from '../../src/backup/parallel/sql-file-read.js';

/** The bytes the decoder copies out of these payloads into a buffer of `room` bytes, or null (gone). */
function decodeValues(parts: Buffer[], rows: number, path: string, room = rows * SQL_ROW): Buffer[] | null {
  const into = Buffer.alloc(room);
  const d = new CopyRowsDecoder(into, path);
  for (const p of parts) d.feed(p);
  const n = d.finish();
  return n === null ? null : [into.subarray(0, n)];
}

function copyBytes(values: (Buffer | null)[]): Buffer {
  const head = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
  const rows = values.map((v) => {
    const h = Buffer.alloc(6);
    h.writeInt16BE(1, 0);
    h.writeInt32BE(v === null ? -1 : v.length, 2);
    return v === null ? h : Buffer.concat([h, v]);
  });
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  return Buffer.concat([head, ...rows, trailer]);
}

/** `all` cut into payloads of `size` bytes, as messages might arrive. */
function cut(all: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; i += size) out.push(all.subarray(i, i + size));
  return out;
}

const full = (seed: number): Buffer => Buffer.alloc(SQL_ROW, seed);

test('values come back in order whatever the payload boundaries', () => {
  const values = [full(1), full(2), Buffer.alloc(100, 3)];
  const all = copyBytes(values);
  for (const size of [all.length, SQL_ROW + 6, 7, 1000, 65536]) {
    const got = decodeValues(cut(all, size), 3, 'f');
    assert.ok(got);
    assert.deepEqual(Buffer.concat(got), Buffer.concat(values), `payloads of ${size}`);
  }
});

test('a NULL first value is a file that is gone', () => {
  assert.equal(decodeValues([copyBytes([null, null])], 2, 'f'), null);
});

test('a file that ended or was dropped midway gives the bytes before', () => {
  const shorter = decodeValues([copyBytes([full(1), Buffer.alloc(10, 2), Buffer.alloc(0)])], 3, 'f');
  assert.deepEqual(shorter && Buffer.concat(shorter), Buffer.concat([full(1), Buffer.alloc(10, 2)]));
  const dropped = decodeValues([copyBytes([full(1), null, null])], 3, 'f');
  assert.deepEqual(dropped && Buffer.concat(dropped), full(1));
  const empty = decodeValues([copyBytes([Buffer.alloc(0)])], 1, 'f');
  assert.deepEqual(empty, [Buffer.alloc(0)]);
});

test('anything else is refused, naming the file', () => {
  const all = copyBytes([full(1), full(2)]);
  assert.throws(() => decodeValues([all.subarray(0, all.length - 5)], 2, 'base/5/1'), /base\/5\/1/);
  assert.throws(() => decodeValues([all], 1, 'base/5/1'), /not the rows/, 'more bytes than asked for');
  assert.throws(() => decodeValues([all, Buffer.from([0, 1])], 2, 'base/5/1'), /not the rows/, 'bytes after the trailer');
  assert.throws(() => decodeValues([Buffer.from('garbage garbage garbage')], 1, 'x'), /not the rows/);
});
