import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { tuningFromEnv } from '../../src/storage/s3/s3-tuning.js';

test('PGPITR_S3_TUNING: absent is empty, fields are taken, bad input is refused by name', () => {
  assert.deepEqual(tuningFromEnv({}), {});
  assert.deepEqual(tuningFromEnv({ PGPITR_S3_TUNING: '{"maxAttempts":2,"partSize":5242880}' }), { maxAttempts: 2, partSize: 5242880 });
  assert.throws(() => tuningFromEnv({ PGPITR_S3_TUNING: 'x' }), /not JSON/);
  assert.throws(() => tuningFromEnv({ PGPITR_S3_TUNING: '[1]' }), /JSON object/);
  assert.throws(() => tuningFromEnv({ PGPITR_S3_TUNING: '{"retries":2}' }), /unknown field "retries"/);
  assert.throws(() => tuningFromEnv({ PGPITR_S3_TUNING: '{"maxAttempts":0}' }), /maxAttempts must be a positive integer/);
});

test('retry backoff: retry i waits between half and all of base x 2^i, capped at 20 s; a new base applies', async () => {
  const { equalJitterBackoff } = await import('../../src/storage/s3/s3-tuning.js');
  const b = equalJitterBackoff(100);
  for (let i = 0; i < 12; i++) {
    const d = Math.min(100 * 2 ** i, 20_000);
    for (let k = 0; k < 200; k++) {
      const w = b.computeNextBackoffDelay(i);
      assert.ok(w >= Math.floor(d / 2) && w <= d, `retry ${i}: ${w} ms`);
    }
  }
  b.setDelayBase(500);
  assert.ok(b.computeNextBackoffDelay(0) >= 250);
});

test('PGPITR_S3_TUNING: a name inherited by every object is not a field', () => {
  assert.throws(() => tuningFromEnv({ PGPITR_S3_TUNING: '{"toString":2}' }), /unknown field "toString"/);
});
