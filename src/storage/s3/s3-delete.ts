// Removing many objects: DeleteObjects in batches, or one DeleteObject per key on a store
// that refuses the batch request (it asks for a Content-MD5 the SDK does not send, or does
// not implement it); what could not be removed is said, by key.

import type * as S3Sdk from '@aws-sdk/client-s3';
import { PgpitrError } from '../../common/errors.js';
import { httpStatus, s3ErrorName } from './s3-errors.js';
import type { Sdk } from './s3-client.js';

export interface DeleteTarget {
  sdk: Sdk;
  client: S3Sdk.S3Client;
  bucket: string;
  batch: number;
  location: string;
  fail(action: string, key: string, e: unknown): PgpitrError;
  /** Set once the store refused a batch: later removals go one key at a time. */
  oneByOne: boolean;
}

/** Codes of a store that does not take DeleteObjects as the SDK sends it. */
const BATCH_REFUSED = new Set(['MissingContentMD5', 'NotImplemented', 'InvalidDigest', 'XAmzContentSHA256Mismatch']);

function refusesBatch(e: unknown): boolean {
  const name = s3ErrorName(e);
  return (name !== undefined && BATCH_REFUSED.has(name)) || httpStatus(e) === 501;
}

export async function deleteKeys(t: DeleteTarget, keys: string[]): Promise<void> {
  const unique = [...new Set(keys)];
  const failed: string[] = [];
  let firstError: PgpitrError | null = null;
  for (let i = 0; i < unique.length; i += t.batch) {
    const batch = unique.slice(i, i + t.batch);
    if (!t.oneByOne) {
      try {
        const r = await t.client.send(new t.sdk.s3.DeleteObjectsCommand({ Bucket: t.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        for (const err of r.Errors ?? []) {
          if (err.Code === 'NoSuchKey') continue;
          failed.push(`${err.Key ?? '?'} (${err.Code ?? 'error'}: ${err.Message ?? ''})`);
        }
        continue;
      } catch (e) {
        if (!refusesBatch(e)) {
          firstError ??= t.fail('remove', batch[0]!, e);
          failed.push(...batch);
          continue;
        }
        t.oneByOne = true;
      }
    }
    for (const Key of batch) {
      try {
        await t.client.send(new t.sdk.s3.DeleteObjectCommand({ Bucket: t.bucket, Key }));
      } catch (e) {
        if (s3ErrorName(e) === 'NoSuchKey') continue;
        firstError ??= t.fail('remove', Key, e);
        failed.push(Key);
      }
    }
  }
  if (failed.length === 0) return;
  if (firstError !== null && failed.length === unique.length) throw firstError;
  const shown = failed.slice(0, 5).join(', ');
  throw new PgpitrError('ERR_STORAGE', `could not remove ${failed.length} of ${unique.length} objects from ${t.location}: ${shown}${failed.length > 5 ? ', ...' : ''}`, {
    ...(firstError ? { cause: firstError } : {}),
    hint: 'run the command again; what was removed stays removed',
  });
}
