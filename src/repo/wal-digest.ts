// The SHA-256 a stored WAL file's name carries (of its uncompressed content).

import { createHash } from 'node:crypto';

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

const HASH_SLICE = 1024 * 1024;

/**
 * SHA-256 in 1 MiB slices with a turn of the event loop between them, so that
 * hashing a 16 MiB segment never holds up, for more than a slice, what shares
 * the process (receive-wal's stream, the pusher's other files).
 */
export async function sha256Sliced(data: Buffer): Promise<string> {
  const hash = createHash('sha256');
  for (let off = 0; off < data.length; off += HASH_SLICE) {
    if (off > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    hash.update(data.subarray(off, off + HASH_SLICE));
  }
  return hash.digest('hex');
}
