// The AWS SDK's S3 client as the S3 driver uses it (s3-storage.ts): the SDK
// loaded with require (createRequire skips the ESM wrapper's scan of its
// CommonJS bundle, design notes §1.2) and only when a repository of type s3 is
// opened; its standard retry strategy with 408 retried too and no budget shared
// by the requests; our agents (TLS
// settings, socket limits), timeouts and request handler (bodies sent again on
// a retry); no checksums the S3-compatible stores refuse; no logging.

import { createRequire } from 'node:module';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3StorageSettings } from './s3-settings.js';
import type { S3Agents } from './s3-agents.js';
import { httpStatus } from './s3-errors.js';
import { equalJitterBackoff } from './s3-tuning.js';
import type { RetryBackoff, S3Tuning } from './s3-tuning.js';
import { payloadHashMiddleware, replayingHandler } from './s3-request-handler.js';
import type { HttpHandlerLike } from './s3-request-handler.js';

const require = createRequire(import.meta.url);

/** The SDK's retry token and error info, as far as the 408 reclassification needs them. */
interface RetryErrorInfo {
  errorType: string;
  error?: unknown;
}
interface RetryStrategyV2 {
  acquireInitialRetryToken(scope: string): Promise<unknown>;
  refreshRetryTokenForRetry(token: unknown, info: RetryErrorInfo): Promise<unknown>;
  recordSuccess(token: unknown): void;
}
export interface SmithyRetry {
  StandardRetryStrategy: new (o: { maxAttempts: number; baseDelay: number; backoff: RetryBackoff }) => RetryStrategyV2;
}

interface SmithyHttp {
  NodeHttpHandler: new (o: object) => HttpHandlerLike;
}

export interface Sdk {
  s3: typeof S3Sdk;
  retry: SmithyRetry;
  http: SmithyHttp;
}

let sdk: Sdk | null = null;
function loadSdk(): Sdk {
  if (sdk !== null) return sdk;
  const s3 = require('@aws-sdk/client-s3') as typeof S3Sdk;
  // The retry strategy and the HTTP handler come from the SDK's own @smithy packages, resolved
  // from client-s3 (whose dependencies they are), not from wherever npm happened to hoist them.
  const own = createRequire(require.resolve('@aws-sdk/client-s3'));
  const retry = own('@smithy/core/retry') as SmithyRetry;
  const http = own('@smithy/node-http-handler') as SmithyHttp;
  sdk = { s3, retry, http };
  return sdk;
}

const QUIET_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/**
 * The SDK's standard retry strategy (5xx, 429/throttling, timeouts, connection errors), with
 * equalJitterBackoff, and HTTP 408 Request Timeout also retried: S3 answers it to a slow client,
 * and the SDK only retries the RequestTimeout error code, not the status.
 *
 * Without its retry budget: the standard strategy shares 500 tokens among all of a client's
 * requests, each retry costs 5 to 14 and each success gives back 1, so that a few seconds of 503s
 * met by a backup's or the pusher's requests in flight used it up, and every request then failed
 * at its first error, whatever maxAttempts says. Each request has its attempts (maxAttempts) and
 * its backoff, and nothing else: an outage is waited out by each request, never turned into a
 * failure by the others' retries. (The budget is the strategy's `capacity`; it is set out of reach
 * before each retry is asked for. The unit test s3-retry checks that it still is so in this SDK.)
 */
export function retryStrategy(retry: SmithyRetry, tuning: S3Tuning): RetryStrategyV2 {
  const base = new retry.StandardRetryStrategy({ maxAttempts: tuning.maxAttempts, baseDelay: tuning.retryBaseDelayMs, backoff: equalJitterBackoff(tuning.retryBaseDelayMs) });
  const budget = base as RetryStrategyV2 & { capacity?: number };
  // Far above what any number of requests in flight can spend between this and the strategy's check
  // (it awaits before it looks); a success sets it back to the strategy's own full 500.
  const hasBudget = typeof budget.capacity === 'number';
  return {
    acquireInitialRetryToken: (scope) => base.acquireInitialRetryToken(scope),
    refreshRetryTokenForRetry: (token, info) => {
      if (hasBudget) budget.capacity = Number.MAX_SAFE_INTEGER;
      return base.refreshRetryTokenForRetry(token, retriedAsTransient(info.errorType, httpStatus(info.error)) ? { ...info, errorType: 'TRANSIENT' } : info);
    },
    recordSuccess: (token) => base.recordSuccess(token),
  };
}

/**
 * Errors the standard strategy would not retry and we do: 408; 409, which S3 answers for a
 * request that met a conflicting one in progress (ConditionalRequestConflict: a conditional PUT
 * racing a delete of the same key, as when a lock is taken while another is released;
 * OperationAborted), none of them final for the requests pgpitr makes; and every 5xx but 501 (the SDK
 * retries only 500, 502, 503 and 504; proxies and CDN fronts answer 507, 520-524 and the like for
 * a moment). 501 Not Implemented stays final: it is an answer (the driver falls back on it).
 */
function retriedAsTransient(errorType: string, status: number | undefined): boolean {
  if (errorType === 'CLIENT_ERROR' && (status === 408 || status === 409)) return true;
  return errorType === 'SERVER_ERROR' && status !== undefined && status >= 500 && status <= 599 && status !== 501;
}

/** The SDK's retry classes (loaded on first use), for retryStrategy. */
export function sdkRetry(): SmithyRetry {
  return loadSdk().retry;
}

/** The SDK (loaded on first use) and a client for one repository's settings. No request is made. */
export function makeS3Client(settings: S3StorageSettings, tuning: S3Tuning, agents: S3Agents): { sdk: Sdk; client: S3Sdk.S3Client } {
  // The SDK warns on stderr, once per client, that its next versions need Node 22: in
  // archive_command that would land in the server log for every segment.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const sdk = loadSdk();
  const client = new sdk.s3.S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.uriStyle === 'path',
    ...(settings.credentials ? { credentials: { ...settings.credentials } } : {}),
    // Since 3.729 the SDK adds a CRC32 checksum to every PUT and validates responses' checksums
    // by default, which several S3-compatible stores refuse (aws-sdk-js-v3 #6810, #6819).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: tuning.maxAttempts,
    retryStrategy: retryStrategy(sdk.retry, tuning) as S3Sdk.S3ClientConfig['retryStrategy'],
    logger: QUIET_LOGGER,
    requestHandler: replayingHandler(
      new sdk.http.NodeHttpHandler({
        httpAgent: agents.http,
        httpsAgent: agents.https,
        connectionTimeout: tuning.connectTimeoutMs,
        socketTimeout: tuning.socketIdleTimeoutMs,
        logger: QUIET_LOGGER,
      }),
    ) as S3Sdk.S3ClientConfig['requestHandler'],
  });
  client.middlewareStack.add(payloadHashMiddleware as never, { step: 'build', name: 'pgpitrPayloadHash' });
  return { sdk, client };
}
