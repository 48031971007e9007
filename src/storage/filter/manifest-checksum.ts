// The per-file checksum of a backup_manifest entry, computed as the server
// does (pg_checksum_* in src/common/checksum_helper.c). A plain synchronous
// class, no streams: worker threads feed it the chunks they read.

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { crc32c } from './crc32c.js';
import type { ManifestChecksumAlgorithm } from '../../postgres/manifest-checksum-algorithm.js';

export { parseManifestChecksumAlgorithm } from '../../postgres/manifest-checksum-algorithm.js';
export type { ManifestChecksumAlgorithm } from '../../postgres/manifest-checksum-algorithm.js';

export interface ManifestChecksum {
  readonly algorithm: ManifestChecksumAlgorithm;
  update(chunk: Uint8Array): void;
  /** The digest as the manifest's "Checksum" hex; '' for NONE. Ends the checksum: no update() after it. */
  digestHex(): string;
}

/** The server copies the finished CRC's uint32 into the output as it lies in memory, so the hex is in host byte order (little-endian on x86 and ARM). */
export function crc32cHex(crc: number): string {
  const bytes = new Uint8Array(new Uint32Array([crc]).buffer);
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

class Crc32cChecksum implements ManifestChecksum {
  readonly algorithm = 'CRC32C' as const;
  private crc = 0;
  update(chunk: Uint8Array): void {
    this.crc = crc32c(chunk, this.crc);
  }
  digestHex(): string {
    return crc32cHex(this.crc);
  }
}

class ShaChecksum implements ManifestChecksum {
  private readonly hash: Hash;
  constructor(readonly algorithm: 'SHA224' | 'SHA256' | 'SHA384' | 'SHA512') {
    this.hash = createHash(algorithm.toLowerCase());
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  digestHex(): string {
    return this.hash.digest('hex');
  }
}

class NoChecksum implements ManifestChecksum {
  readonly algorithm = 'NONE' as const;
  update(): void {}
  digestHex(): string {
    return '';
  }
}

export function createManifestChecksum(algorithm: ManifestChecksumAlgorithm): ManifestChecksum {
  switch (algorithm) {
    case 'NONE':
      return new NoChecksum();
    case 'CRC32C':
      return new Crc32cChecksum();
    default:
      return new ShaChecksum(algorithm);
  }
}
