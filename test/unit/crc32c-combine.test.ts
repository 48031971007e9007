import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { crc32c } from '../../src/storage/filter/crc32c.js';
import { crc32cCombine } from '../../src/storage/filter/crc32c-combine.js';

test('crc32cCombine gives the CRC-32C of the joined pieces, whatever the split', () => {
  const data = randomBytes(200_000);
  const whole = crc32c(data);
  for (const cut of [0, 1, 7, 8192, 65_536, 123_457, 199_999, 200_000]) {
    const a = crc32c(data.subarray(0, cut));
    const b = crc32c(data.subarray(cut));
    assert.equal(crc32cCombine(a, b, data.length - cut), whole, `split at ${cut}`);
  }
  // Three pieces, combined left to right, as ranges of a file are.
  const parts = [data.subarray(0, 50_000), data.subarray(50_000, 150_000), data.subarray(150_000)];
  let acc = crc32c(parts[0]!);
  for (const p of parts.slice(1)) acc = crc32cCombine(acc, crc32c(p), p.length);
  assert.equal(acc, whole);
  assert.equal(crc32cCombine(crc32c(Buffer.from('12345')), crc32c(Buffer.from('6789')), 4), 0xe3069283);
});
