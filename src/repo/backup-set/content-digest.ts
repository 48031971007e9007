// The digest of a file's original content that a backup set records, and that
// verify, delta restore and a resumed backup compare bytes against.
//
// Sets written since manifest format 2 record XXH3-128; older ones SHA-256, and
// both are read. Why the change: SHA-256 runs at ~1.0 GB/s here even with the
// CPU's SHA extensions, and a file's digest is taken in order on one thread, so
// a cluster's 1 GiB relation segments made one reader hash for over a second
// while the other ran out of work (bench/RESULTS.md). XXH3-128 runs at ~6-9 GB/s.
// The digest guards against damage (a flipped bit, a truncated or swapped object,
// a stale file left by a delta restore), which a 128-bit hash of this quality
// catches as surely as SHA-256; it is not what guards against someone who can
// rewrite the repository: that is the encryption's authentication (AES-256-GCM),
// which covers the manifest too. pgBackRest makes the same split (SHA-1 per
// file, xxHash for its block maps).

import { createHash } from 'node:crypto';
import type { ContentHash } from '../../storage/filter/xxh128.js';
import { createXxh128 } from '../../storage/filter/xxh128.js';

export type DigestAlgorithm = 'xxh128' | 'sha256';

/** A file's recorded digest. */
export interface FileDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** The algorithm new sets record. */
export const SET_DIGEST: DigestAlgorithm = 'xxh128';

const NAMES: Record<DigestAlgorithm, string> = { xxh128: 'XXH3-128', sha256: 'SHA-256' };
const PATTERNS: Record<DigestAlgorithm, RegExp> = { xxh128: /^[0-9a-f]{32}$/, sha256: /^[0-9a-f]{64}$/ };

/** The digest recorded for a manifest or journal entry: XXH3-128 if it has one, else SHA-256; null when neither is valid. */
export function digestOf(e: { xxh128?: string | undefined; sha256?: string | undefined }): FileDigest | null {
  if (e.xxh128 !== undefined) return PATTERNS.xxh128.test(e.xxh128) ? { algorithm: 'xxh128', hex: e.xxh128 } : null;
  if (e.sha256 !== undefined) return PATTERNS.sha256.test(e.sha256) ? { algorithm: 'sha256', hex: e.sha256 } : null;
  return null;
}

/** The entry's field for a digest: { xxh128 } or { sha256 }. */
export function digestField(d: FileDigest): { xxh128: string } | { sha256: string } {
  return d.algorithm === 'xxh128' ? { xxh128: d.hex } : { sha256: d.hex };
}

/** "XXH3-128" or "SHA-256", for messages. */
export function digestName(algorithm: DigestAlgorithm): string {
  return NAMES[algorithm];
}

export function createDigest(algorithm: DigestAlgorithm): ContentHash {
  if (algorithm === 'xxh128') return createXxh128();
  const h = createHash('sha256');
  return {
    update: (bytes) => void h.update(bytes),
    digestHex: () => h.digest('hex'),
  };
}

export function digestHex(algorithm: DigestAlgorithm, bytes: Uint8Array): string {
  const h = createDigest(algorithm);
  h.update(bytes);
  return h.digestHex();
}

/** "XXH3-128 <got> instead of <want>": what a damaged file's message says. */
export function digestMismatch(d: FileDigest, got: string): string {
  return `${NAMES[d.algorithm]} ${got} instead of ${d.hex}`;
}
