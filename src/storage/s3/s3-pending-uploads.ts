// The multipart uploads begun under a repository's prefix and neither
// completed nor aborted (Storage.listUploads): ListMultipartUploads, paged by
// key and upload id. null where the store does not implement the listing.

import type * as S3Sdk from '@aws-sdk/client-s3';
import type { PendingUpload } from '../storage.js';
import type { Sdk } from './s3-client.js';
import { httpStatus, s3ErrorName } from './s3-errors.js';

export async function listPendingUploads(
  sdk: Sdk,
  client: S3Sdk.S3Client,
  bucket: string,
  prefix: string,
  fail: (e: unknown) => Error,
): Promise<PendingUpload[] | null> {
  const out: PendingUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    let page: S3Sdk.ListMultipartUploadsCommandOutput;
    try {
      page = await client.send(
        new sdk.s3.ListMultipartUploadsCommand({
          Bucket: bucket,
          ...(prefix !== '' ? { Prefix: prefix } : {}),
          ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
          ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
        }),
      );
    } catch (e) {
      // Several S3-compatible stores do not implement the listing (501 NotImplemented).
      if (httpStatus(e) === 501 || s3ErrorName(e) === 'NotImplemented') return null;
      throw fail(e);
    }
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined || !u.Key.startsWith(prefix)) continue;
      out.push({ path: u.Key.slice(prefix.length), uploadId: u.UploadId, initiatedMs: u.Initiated?.getTime() ?? 0 });
    }
    if (!page.IsTruncated || (page.NextKeyMarker === undefined && page.NextUploadIdMarker === undefined)) return out;
    // A store that gives the same markers again would be asked forever: what was listed is what is cleaned.
    if (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker) return out;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}
