// pg_control in a parallel backup (control-copy.ts): read again until its CRC
// matches, at the offset of any version; never copied torn.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { controlFileIntact, intactControlFile } from '../../src/backup/parallel/control-copy.js';
import { crc32c } from '../../src/storage/filter/crc32c.js';

function control(crcAt = 288): Buffer {
  const b = Buffer.alloc(8192);
  randomBytes(crcAt).copy(b);
  b.writeUInt32LE(crc32c(b.subarray(0, crcAt)) >>> 0, crcAt);
  return b;
}

test('a control file whose CRC matches, at 13-18\'s offset or another, is intact; one torn is not', () => {
  assert.equal(controlFileIntact(control()), true);
  assert.equal(controlFileIntact(control(296)), true);
  const torn = control();
  torn[100]! ^= 0xff;
  assert.equal(controlFileIntact(torn), false);
});

test('pg_control is read again until its CRC matches, and those bytes are taken; never matching, the backup fails naming it', async () => {
  const good = control();
  const torn = Buffer.from(good);
  torn.fill(0x55, 40, 120); // a read overlapping the server's write: part of the next version
  let reads = 0;
  const got = await intactControlFile(async () => (++reads < 3 ? torn : good), './global/pg_control');
  assert.equal(reads, 3);
  assert.ok(got.equals(good));
  await assert.rejects(intactControlFile(async () => torn, './global/pg_control'), /\.\/global\/pg_control: its CRC did not match in 10 reads/);
});
