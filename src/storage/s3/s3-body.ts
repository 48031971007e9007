// The body of a PUT or an UploadPart: bytes in memory, sent as a stream of
// slices, a new stream for each attempt. Sent as one Buffer (what the SDK does
// with a Buffer body), the whole body is encrypted at once into TLS's output
// buffer, a second copy of every part in flight; a stream is encrypted as the
// socket takes it. A plain stream cannot be sent twice, so the SDK retries
// only a body it can replay: the request handler (s3-request-handler.ts) asks
// this one for a fresh stream on every attempt.
//
// The SHA-256 of the bytes goes in x-amz-content-sha256 (signed): the store
// checks the body against it, as it does for a Buffer body the SDK hashes.
// SDK-free.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

const SLICE = 256 * 1024;

export class ReplayableBody {
  /** Hex SHA-256 of the bytes. */
  readonly sha256: string;
  private readonly streams = new Set<Readable>();

  /** `data` must not change until release(). */
  constructor(readonly data: Buffer) {
    this.sha256 = createHash('sha256').update(data).digest('hex');
  }

  get length(): number {
    return this.data.length;
  }

  /** The bytes from the start, as a new stream. */
  stream(): Readable {
    const data = this.data;
    function* slices(): Generator<Buffer> {
      for (let off = 0; off < data.length; off += SLICE) yield data.subarray(off, off + SLICE);
    }
    const s = Readable.from(slices(), { objectMode: false, highWaterMark: SLICE });
    this.streams.add(s);
    s.once('close', () => this.streams.delete(s));
    return s;
  }

  /** Once the request settled: a stream of an abandoned attempt stops reading `data` (the buffer is reused). */
  release(): void {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
  }
}
