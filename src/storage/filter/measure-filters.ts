// Filters that only look: the byte count, a digest and the CRC-32C of what passes.

import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Filter } from './filter.js';
import { crc32c, crc32cText } from './crc32c.js';
import { createXxh128 } from './xxh128.js';

function tap(name: string, see: (chunk: Buffer) => void, result: () => unknown): Filter {
  const stream = new Transform({
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      see(chunk);
      cb(null, chunk);
    },
  });
  return { name, stream, result };
}

export function sizeFilter(name = 'size'): Filter {
  let bytes = 0;
  return tap(name, (c) => (bytes += c.length), () => bytes);
}

export function sha256Filter(name = 'sha256'): Filter {
  const hash = createHash('sha256');
  let digest: string | undefined;
  return tap(
    name,
    (c) => hash.update(c),
    () => (digest ??= hash.digest('hex')),
  );
}

/** The XXH3-128 of what passes, as 32 hex digits. */
export function xxh128Filter(name = 'xxh128'): Filter {
  const hash = createXxh128();
  let digest: string | undefined;
  return tap(
    name,
    (c) => hash.update(c),
    () => (digest ??= hash.digestHex()),
  );
}

/** The CRC-32C of what passes, as 8 hex digits. */
export function crc32cFilter(name = 'crc32c'): Filter {
  let crc = 0;
  return tap(
    name,
    (c) => (crc = crc32c(c, crc)),
    () => crc32cText(crc),
  );
}
