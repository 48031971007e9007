// The S3 client's retry strategy (the SDK's own standard strategy, not a stand-in): each request
// has its attempts, and no budget shared by all of a client's requests ends them early.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { retryStrategy, sdkRetry } from '../../src/storage/s3/s3-client.js';
import { DEFAULT_S3_TUNING } from '../../src/storage/s3/s3-tuning.js';

const tuning = { ...DEFAULT_S3_TUNING, maxAttempts: 4, retryBaseDelayMs: 1 };
const transient = { errorType: 'TRANSIENT', error: Object.assign(new Error('503 Slow Down'), { $metadata: { httpStatusCode: 503 } }) };

test('s3 retries: 300 requests each meeting a transient error are all retried (the SDK budget of 500 tokens would stop them after about 100)', async () => {
  const strategy = retryStrategy(sdkRetry(), tuning);
  for (let i = 0; i < 300; i++) {
    const token = await strategy.acquireInitialRetryToken('s3');
    await assert.doesNotReject(strategy.refreshRetryTokenForRetry(token, transient), `request ${i}`);
  }
});

test('s3 retries: one request still stops after its maxAttempts', async () => {
  const strategy = retryStrategy(sdkRetry(), tuning);
  let token = await strategy.acquireInitialRetryToken('s3');
  for (let attempt = 2; attempt <= tuning.maxAttempts; attempt++) token = await strategy.refreshRetryTokenForRetry(token, transient);
  await assert.rejects(strategy.refreshRetryTokenForRetry(token, transient), /No retry token available/);
});

test('s3 retries: a client error is not retried; a 408 is', async () => {
  const strategy = retryStrategy(sdkRetry(), tuning);
  const denied = { errorType: 'CLIENT_ERROR', error: Object.assign(new Error('Access Denied'), { $metadata: { httpStatusCode: 403 } }) };
  await assert.rejects(strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken('s3'), denied));
  const timeout = { errorType: 'CLIENT_ERROR', error: Object.assign(new Error('Request Timeout'), { $metadata: { httpStatusCode: 408 } }) };
  await assert.doesNotReject(strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken('s3'), timeout));
});

test('s3 retries: every 5xx is retried (a proxy\'s 507 or 520 too), but 501, which is an answer', async () => {
  const strategy = retryStrategy(sdkRetry(), tuning);
  const server = (status: number) => ({ errorType: 'SERVER_ERROR', error: Object.assign(new Error(`${status}`), { $metadata: { httpStatusCode: status } }) });
  for (const status of [505, 507, 520, 524]) await assert.doesNotReject(strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken('s3'), server(status)), String(status));
  await assert.rejects(strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken('s3'), server(501)));
});
