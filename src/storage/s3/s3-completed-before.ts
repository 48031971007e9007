// A multipart completion retried after its first attempt's answer was lost
// (the connection dropped once the store had done it): a store that forgets a
// completed upload answers the retry NoSuchUpload, though the object is
// stored whole. It is ours when it is there with the ETag those parts make
// (the MD5 of their MD5s, "-" and their number). A store whose ETags are not
// MD5s (SSE-KMS) cannot tell: the write fails, and a rerun stores it again.

import { createHash } from 'node:crypto';
import type { CompletedPart } from './s3-upload.js';
import { httpStatus, s3ErrorName } from './s3-errors.js';

export async function completedBefore(e: unknown, parts: CompletedPart[], head: () => Promise<{ ETag?: string | undefined }>): Promise<boolean> {
  const retried = ((e as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1;
  if (!retried || (s3ErrorName(e) !== 'NoSuchUpload' && httpStatus(e) !== 404)) return false;
  const md5s = parts.map((p) => Buffer.from((p.ETag ?? '').replace(/"/g, ''), 'hex'));
  if (md5s.some((m) => m.length !== 16)) return false;
  const expected = `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}"`;
  try {
    return (await head()).ETag === expected;
  } catch {
    return false;
  }
}
