// Whether a ranged GET got the bytes it asked for (s3-storage.ts open): a store
// or proxy that ignores Range answers 200 with the whole object, one that
// answers another range says so in its Content-Range; either way those bytes
// would be taken for the ones at the offset asked (a resumed read, a part of a
// stored bundle).

import { PgpitrError } from '../../common/errors.js';

/** The error for a GET of `range` ([offset, offset + length), length undefined: to the end) answered wrongly, or null. */
export function rangeRefusal(url: string, range: string, status: number | undefined, contentRange: string | undefined, offset: number, length: number | undefined): PgpitrError | null {
  if (status !== 206) {
    return new PgpitrError('ERR_STORAGE', `cannot read ${url}: the store answered a read of ${range} with the whole object (status ${status ?? 'unknown'}): it ignores Range requests`, {
      hint: 'pgpitr needs ranged GETs (resumed reads, parts of stored bundles): use a store or proxy that honours the Range header',
    });
  }
  // Without the header (S3 always sends it with 206) there is nothing to compare.
  if (contentRange === undefined || answers(contentRange, offset, length)) return null;
  return new PgpitrError('ERR_STORAGE', `cannot read ${url}: the store answered a read of ${range} with ${JSON.stringify(contentRange)}, another range`, {
    hint: 'a store or proxy between pgpitr and the store answers ranged GETs wrongly: use one that honours the Range header',
  });
}

/** Whether `bytes START-END/TOTAL` answers [offset, offset + length): from offset, to its end or the object's. */
function answers(contentRange: string, offset: number, length: number | undefined): boolean {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange.trim());
  if (m === null) return false;
  const [start, end] = [Number(m[1]), Number(m[2])];
  const objectEnd = m[3] === '*' ? null : Number(m[3]) - 1;
  if (start !== offset || end < start) return false;
  if (length === undefined) return objectEnd === null || end === objectEnd;
  // The object may end before the range does: then up to its end.
  return end === offset + length - 1 || (end === objectEnd && end < offset + length - 1);
}
