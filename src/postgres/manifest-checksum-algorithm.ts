// The checksum algorithms a backup_manifest may name for its files, spelled as
// the server writes them (pg_checksum_type_name in src/common/checksum_helper.c).
// Lives in the postgres layer so the manifest builder and the option parser
// share it without importing the hashing code above them.

import { usageError } from '../common/errors.js';

export const MANIFEST_CHECKSUM_ALGORITHMS = ['NONE', 'CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512'] as const;

export type ManifestChecksumAlgorithm = (typeof MANIFEST_CHECKSUM_ALGORITHMS)[number];

/** PostgreSQL's default for --manifest-checksums. */
export const DEFAULT_MANIFEST_CHECKSUM_ALGORITHM: ManifestChecksumAlgorithm = 'CRC32C';

/** Digest length in bytes (0 for NONE): the manifest's hex is twice this. */
export function manifestChecksumLength(algorithm: ManifestChecksumAlgorithm): number {
  switch (algorithm) {
    case 'NONE':
      return 0;
    case 'CRC32C':
      return 4;
    case 'SHA224':
      return 28;
    case 'SHA256':
      return 32;
    case 'SHA384':
      return 48;
    case 'SHA512':
      return 64;
  }
}

/** Accepts what pg_basebackup --manifest-checksums accepts: the names above, in any case (pg_checksum_parse_type uses pg_strcasecmp). */
export function parseManifestChecksumAlgorithm(text: string): ManifestChecksumAlgorithm {
  const upper = text.toUpperCase();
  const found = MANIFEST_CHECKSUM_ALGORITHMS.find((a) => a === upper);
  if (found === undefined) {
    throw usageError(`invalid manifest checksum algorithm "${text}"`, 'use NONE, CRC32C, SHA224, SHA256, SHA384 or SHA512');
  }
  return found;
}
