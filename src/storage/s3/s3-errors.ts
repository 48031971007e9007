// Errors of the S3 client (the SDK's service exceptions, Node's network and TLS
// errors) as PgpitrError: a stable code, the object, and what to change. Reads
// only the errors' fields (name, code, $metadata), so it loads no SDK.
//
//   missing bucket                 ERR_STORAGE     (like a posix repository that is not there)
//   credentials refused / denied   ERR_CONNECTION  (could not authenticate; also none found)
//   untrusted or wrong certificate ERR_CONNECTION
//   unreachable after N attempts   ERR_CONNECTION  (nothing answered: refused, no route, no name)
//   failing after N attempts       ERR_CONNECTION_LOST (5xx, resets, timeouts: try again later)
//   anything else                  ERR_STORAGE, with the S3 error code and message

import { PgpitrError } from '../../common/errors.js';
import type { S3StorageSettings } from './s3-settings.js';

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  cause?: unknown;
}

const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired', 'InvalidSecurity', 'AuthorizationHeaderMalformed']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);
const CUT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

function shape(e: unknown): SdkErrorShape {
  return typeof e === 'object' && e !== null ? (e as SdkErrorShape) : { message: String(e) };
}

/** The first Node system or TLS error code found in an error or its causes. */
function systemCode(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 6; c = shape(c).cause, depth++) {
    const code = shape(c).code;
    if (typeof code === 'string' && code !== '') return code;
  }
  return undefined;
}

export function isTlsTrustCode(code: string | undefined): boolean {
  return code !== undefined && /CERT|SELF_SIGNED|LEAF_SIGNATURE|ISSUER/.test(code);
}

/** The S3 error name of an SDK exception: NoSuchKey, NoSuchBucket, PreconditionFailed, NotFound... */
export function s3ErrorName(e: unknown): string | undefined {
  const s = shape(e);
  return s.$metadata !== undefined ? (s.Code ?? s.name) : undefined;
}

export function httpStatus(e: unknown): number | undefined {
  return shape(e).$metadata?.httpStatusCode;
}

/** Did the request reach S3 and get an answer (as opposed to a network or local failure)? */
export function isServiceError(e: unknown): boolean {
  return httpStatus(e) !== undefined;
}

export function bucketMissing(settings: S3StorageSettings, cause?: unknown): PgpitrError {
  return new PgpitrError('ERR_STORAGE', `bucket "${settings.bucket}" does not exist at ${settings.endpoint} (${settings.label})`, {
    ...(cause === undefined ? {} : { cause }),
    hint: `create the bucket, or correct ${settings.label}-s3-bucket, ${settings.label}-s3-endpoint or ${settings.label}-s3-uri-style`,
  });
}

function credentialsHint(settings: S3StorageSettings): string {
  return settings.credentials !== undefined
    ? `check ${settings.label}-s3-key and ${settings.label}-s3-key-secret (and the bucket's policy for this key)`
    : `no key is configured for ${settings.label}: set ${settings.label}-s3-key and ${settings.label}-s3-key-secret, or fix the AWS credentials of the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/credentials)`;
}

/**
 * A failed S3 request as a PgpitrError. action says what was tried ("read", "write", "list"),
 * object names it (s3://bucket/key).
 */
export function s3Error(settings: S3StorageSettings, action: string, object: string, e: unknown): PgpitrError {
  if (e instanceof PgpitrError) return e;
  const s = shape(e);
  const name = s3ErrorName(e);
  const status = httpStatus(e);
  const attempts = s.$metadata?.attempts;
  const after = attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : '';
  const why = (s.message ?? String(e)).split('\n')[0];
  const details = { cause: e };
  if (name === 'NoSuchBucket') return bucketMissing(settings, e);
  if (s.name === 'CredentialsProviderError') {
    return new PgpitrError('ERR_CONNECTION', `no credentials found for ${settings.label} to ${action} ${object}: ${why}`, {
      ...details,
      hint: credentialsHint(settings),
    });
  }
  if (name !== undefined && CREDENTIAL_CODES.has(name)) {
    return new PgpitrError('ERR_CONNECTION', `${settings.endpoint} refused the credentials of ${settings.label} to ${action} ${object}: ${name ?? s.name}: ${why}`, {
      ...details,
      hint: credentialsHint(settings),
    });
  }
  if (name === 'RequestTimeTooSkewed') {
    return new PgpitrError('ERR_CONNECTION', `${settings.endpoint} refused to ${action} ${object}: this host's clock is too far from the store's (${name}: ${why}) (${settings.label})`, {
      ...details,
      hint: "set this host's clock right (NTP); signed requests are refused when the clocks differ by more than 15 minutes",
    });
  }
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || status === 403) {
    // A HEAD's 403 has no body to say whether the key or the permission is wrong.
    // Another code of the store's own (a quota, a suspended account) is said as the store says it.
    const reason = name === 'AccessDenied' || name === 'AllAccessDisabled' ? why : name !== undefined && name !== 'Forbidden' && name !== 'UnknownError' ? `${name}: ${why}` : 'HTTP 403 without details: the credentials were refused or lack the permission';
    return new PgpitrError('ERR_CONNECTION', `access denied to ${action} ${object} at ${settings.endpoint} (${settings.label}): ${reason}`, {
      ...details,
      hint: `${credentialsHint(settings)}; the key needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on the bucket`,
    });
  }
  const sys = systemCode(e);
  if (isTlsTrustCode(sys)) {
    return new PgpitrError('ERR_CONNECTION', `the certificate of ${settings.endpoint} is not trusted (${sys}) (${settings.label})`, {
      ...details,
      hint: `give the CA that signed it in ${settings.label}-storage-ca-file; or check ${settings.label}-s3-endpoint and ${settings.label}-storage-host (the certificate must name the host); ${settings.label}-storage-verify-tls=n turns verification off (test set-ups only)`,
    });
  }
  if (status === undefined && sys !== undefined && UNREACHABLE_CODES.has(sys)) {
    return new PgpitrError('ERR_CONNECTION', `${settings.endpoint} is unreachable${after} (${sys}) (${settings.label}): could not ${action} ${object}`, {
      ...details,
      hint: `check ${settings.label}-s3-endpoint, ${settings.label}-storage-port and that the object store is running and reachable from this host`,
    });
  }
  if ((status !== undefined && status >= 500) || status === 408 || status === 429 || (status === undefined && sys !== undefined && CUT_CODES.has(sys)) || s.name === 'TimeoutError') {
    const what = status !== undefined ? `HTTP ${status}${name ? ` ${name}` : ''}` : (sys ?? s.name ?? 'error');
    return new PgpitrError('ERR_CONNECTION_LOST', `${settings.endpoint} failed to ${action} ${object}${after} (${what}: ${why}) (${settings.label})`, {
      ...details,
      hint: 'the object store is failing or overloaded, or the network drops connections; run the command again later',
    });
  }
  const label = name !== undefined ? `${name}${status !== undefined ? ` (HTTP ${status})` : ''}: ` : '';
  return new PgpitrError('ERR_STORAGE', `could not ${action} ${object} at ${settings.endpoint} (${settings.label}): ${label}${why}`, details);
}
