// Storage paths to S3 keys and back: every object of a repository lives under
// the repository's prefix in its bucket ("<prefix>/<path>"), and a directory
// is only the "<key>/" prefix its objects share; a listing's pages follow one
// another by continuation token. Pure: no I/O, no SDK.

import type { S3StorageSettings } from './s3-settings.js';
import { PgpitrError } from '../../common/errors.js';

export class S3Keys {
  constructor(private readonly prefix: string) {}

  /** The key of a (checked) storage path; '' (the root) is the prefix itself. */
  key(path: string): string {
    if (path === '') return this.prefix;
    return this.prefix === '' ? path : `${this.prefix}/${path}`;
  }

  /** The key prefix of everything under a (checked) storage path: "<key>/", or '' at the bucket's root. */
  under(path: string): string {
    const key = this.key(path);
    return key === '' ? '' : `${key}/`;
  }
}

/** For messages: s3://bucket/prefix/path (never a secret). */
export function s3Url(settings: Pick<S3StorageSettings, 'bucket'>, key: string): string {
  return `s3://${settings.bucket}/${key}`;
}

/** The storage's location, for messages: where the bucket is and under which prefix. */
export function s3Location(settings: Pick<S3StorageSettings, 'bucket' | 'prefix' | 'endpoint'>): string {
  return `"s3://${settings.bucket}${settings.prefix === '' ? '' : `/${settings.prefix}`}" at ${settings.endpoint}`;
}

/**
 * The token of a listing's next page, undefined after the last. A page said truncated that gives
 * no token, or the one it was asked with, would end the listing early (what the archive holds
 * after it unseen: a gap not found, recovery ending early) or ask forever: an error instead.
 */
export function nextPage(truncated: boolean | undefined, asked: string | undefined, next: string | undefined, what: () => string): string | undefined {
  if (!truncated) return undefined;
  if (next !== undefined && next !== '' && next !== asked) return next;
  throw new PgpitrError('ERR_STORAGE', `the listing of ${what()} was cut short by the store: a page said more keys follow, and gave ${next === undefined || next === '' ? 'no continuation token' : 'the same continuation token again'}`, {
    hint: 'the store does not page ListObjectsV2 (list-type=2) as S3 does; check its S3 compatibility, or use another store',
  });
}
