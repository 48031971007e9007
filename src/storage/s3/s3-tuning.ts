// The S3 driver's internal sizes and retry pacing. Not user options: the
// defaults are what a repository uses; tests shrink them to exercise pages,
// multipart uploads and retries cheaply. Pure.

export interface S3Tuning {
  /** Attempts of one request, the first included (5xx, 408, 429, connection errors). */
  maxAttempts: number;
  /** Base of the SDK's jittered exponential backoff, in ms (the SDK's own default is 50). */
  retryBaseDelayMs: number;
  /** Bytes above which a write is a multipart upload, and the size of each part (S3's minimum is 5 MiB). */
  partSize: number;
  /** Parts uploaded at once by one write, while its next part fills: partQueue + 1 part buffers per write at most. */
  partQueue: number;
  /**
   * Part buffers of one storage (s3-part-pool.ts), shared by its writes and reused: memory for writes
   * is partSize × max(partBuffers, writes at once) at most (each write can have one).
   */
  partBuffers: number;
  /** Keys per ListObjectsV2 page (S3's maximum: 1000). */
  listPageSize: number;
  /** Keys per DeleteObjects request (S3's maximum: 1000). */
  deleteBatch: number;
  /** Ranged GETs that continue a read whose body broke midway, from the bytes already delivered. */
  readResumes: number;
  /** Connect timeout, and idle time of a socket before a request fails (then retried), in ms. */
  connectTimeoutMs: number;
  socketIdleTimeoutMs: number;
  /** Sockets kept per agent. */
  maxSockets: number;
}

export const DEFAULT_S3_TUNING: S3Tuning = {
  maxAttempts: 8,
  retryBaseDelayMs: 100,
  partSize: 8 * 1024 * 1024,
  partQueue: 2,
  partBuffers: 6,
  listPageSize: 1000,
  deleteBatch: 1000,
  readResumes: 3,
  connectTimeoutMs: 10_000,
  socketIdleTimeoutMs: 60_000,
  maxSockets: 16,
};

/**
 * Tuning from PGPITR_S3_TUNING, a JSON object of S3Tuning fields: for tests, which run the CLI as a
 * child process (a failure against a stopped server is tested with 2 attempts, not 8). Not a user
 * option: unknown fields and values that are not positive integers are refused.
 */
export function tuningFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<S3Tuning> {
  const raw = env.PGPITR_S3_TUNING;
  if (raw === undefined || raw === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new Error('PGPITR_S3_TUNING is not JSON: unset it (it is a test setting)');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('PGPITR_S3_TUNING must be a JSON object: unset it (it is a test setting)');
  const out: Partial<Record<keyof S3Tuning, number>> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!Object.hasOwn(DEFAULT_S3_TUNING, key)) throw new Error(`PGPITR_S3_TUNING: unknown field "${key}": unset it (it is a test setting)`);
    if (!Number.isInteger(value) || (value as number) < 1) throw new Error(`PGPITR_S3_TUNING: ${key} must be a positive integer`);
    out[key as keyof S3Tuning] = value as number;
  }
  return out;
}

/** The SDK's backoff interface (StandardRetryStrategy's `backoff`). */
export interface RetryBackoff {
  computeNextBackoffDelay(retries: number): number;
  setDelayBase(ms: number): void;
}

/**
 * Exponential backoff with "equal jitter": retry i waits between half and all of base × 2^i (at
 * most 20 s). The SDK's own draws the whole wait at random from zero ("full jitter"), so that
 * seven retries may all come within a second or two of an outage and fail an archive_command
 * that these bounds carry through: here the waits add up to at least half their nominal sum
 * (6.35 s for 8 attempts at a 100 ms base).
 */
export function equalJitterBackoff(base: number): RetryBackoff {
  let x = base;
  return {
    computeNextBackoffDelay(retries: number): number {
      const d = Math.min(x * 2 ** retries, 20_000);
      return Math.floor(d / 2 + (Math.random() * d) / 2);
    },
    setDelayBase(ms: number): void {
      x = ms;
    },
  };
}
