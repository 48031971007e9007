// The stored bytes of the bundle a backup set's writer is gathering (writer.ts),
// copied into chunks of its own as the small files come.
//
// Kept as the Buffers they came in, each file's bytes held far more memory than
// their length: a view of a network chunk of the server's stream, or a few
// hundred bytes of one of Node's shared 8 KiB pool slabs, the rest of it other
// short-lived allocations. A cluster of 98,000 small files compressed with zstd
// held 56 MB of slabs for its 9.5 MB of bundled bytes that way.

import { drained } from '../../storage/stream-util.js';

/** Bytes per chunk: a 4 MiB bundle is five at most. */
const CHUNK = 1024 * 1024;
/** The first chunk's least size. */
const FIRST = 64 * 1024;

export class BundleBytes {
  private chunks: Buffer[] = [];
  /** Bytes used of the last chunk. */
  private used = 0;
  /** The bundle's length. */
  bytes = 0;
  /** Files in the bundle (some may be empty). */
  files = 0;

  /** One file's stored bytes, at offset `bytes` (read before the call). */
  add(data: Buffer): void {
    for (let from = 0; from < data.length; ) {
      let last = this.chunks.at(-1);
      if (last === undefined || this.used === last.length) {
        // The first chunk no larger than needed for a bundle that may stay small (the last one).
        last = Buffer.allocUnsafeSlow(this.chunks.length === 0 ? Math.min(CHUNK, Math.max(FIRST, data.length - from)) : CHUNK);
        this.chunks.push(last);
        this.used = 0;
      }
      const n = data.copy(last, this.used, from);
      this.used += n;
      from += n;
    }
    this.bytes += data.length;
    this.files++;
  }

  /** The bundle's bytes in order, each chunk let go of once taken; the bundle is then empty. */
  drain(): Generator<Buffer> {
    const chunks = this.chunks;
    if (chunks.length > 0) chunks[chunks.length - 1] = chunks.at(-1)!.subarray(0, this.used);
    this.chunks = [];
    this.used = 0;
    this.bytes = 0;
    this.files = 0;
    return drained(chunks);
  }
}
