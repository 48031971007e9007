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
