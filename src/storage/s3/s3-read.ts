// A GET whose body breaks midway (a connection reset, an idle timeout) is not
// retried by the SDK: the bytes already handed to the reader cannot be taken
// back. This stream continues instead with a ranged GET from the first byte not
// yet delivered, a few times, and checks that the object is still the same one
// (its ETag). SDK-free: the driver passes the function that opens a range.

import { Readable } from 'node:stream';

export interface OpenedBody {
  body: AsyncIterable<Uint8Array> & { destroy?(error?: Error): void };
  /** Bytes this body should give (its Content-Length), when known. */
  length?: number;
  etag?: string;
}

export interface ResumableReadOptions {
  /** Absolute offset of the first byte of first. */
  start: number;
  /** Bytes wanted from start, when bounded. */
  length?: number;
  first: OpenedBody;
  /** Opens the object again from offset (length bytes, or to the end), the same version (etag). */
  reopen(offset: number, length: number | undefined, etag: string | undefined): Promise<OpenedBody>;
  /** Resumes allowed before the read fails with the last break. */
  resumes: number;
  /** Turns a break that is not resumed (the last one, or the reopen's own failure) into the error to give. */
  fail(e: unknown): Error;
}

export function resumableRead(o: ResumableReadOptions): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    let current = o.first;
    let delivered = 0;
    let resumes = 0;
    for (;;) {
      let received = 0;
      try {
        for await (const chunk of current.body) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          received += buf.length;
          delivered += buf.length;
          yield buf;
        }
        if (current.length !== undefined && received < current.length) {
          throw Object.assign(new Error(`the body ended after ${received} of ${current.length} bytes`), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
        }
        return;
      } catch (e) {
        current.body.destroy?.();
        if (resumes++ >= o.resumes) throw o.fail(e);
        const rest = o.length === undefined ? undefined : o.length - delivered;
        if (rest === 0) return;
        try {
          const next = await o.reopen(o.start + delivered, rest, o.first.etag);
          if (o.first.etag !== undefined && next.etag !== undefined && next.etag !== o.first.etag) {
            next.body.destroy?.();
            throw new Error(`the object was replaced while it was read (ETag ${o.first.etag}, now ${next.etag})`);
          }
          current = next;
        } catch (e2) {
          throw o.fail(e2);
        }
      }
    }
  }
  return Readable.from(bytes(), { objectMode: false, highWaterMark: 1024 * 1024 });
}
