// A compressed .partial that an earlier run left, taken up again without ever
// holding less than it held. receive-wal resumes at the start of that segment,
// as pg_receivewal does, and a compressed stream cannot be rewritten in place:
// truncating the file at the first new byte would leave it shorter than before
// until the server had sent the same bytes again, and if the connection broke
// meanwhile, a server without a slot could recycle that WAL before the next
// start. So the new stream is written under a temporary name, beginning with
// the bytes the old file decodes to, synced, and renamed over the old file;
// the bytes the server sends again below that point are compared, not written.

import { closeSync, fstatSync, openSync, readFileSync, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import { PgpitrError, storageError } from '../common/errors.js';
import { fsyncPath } from '../storage/durable.js';
import { syncDecoder } from '../storage/compress/sync-decoder.js';
import type { ReceivedCompression } from './received-file-names.js';

/** What the writer of a resumed segment needs of its inner, compressed writer. */
export interface InnerWriter {
  write(data: Buffer, offset: number): void | Promise<void>;
  sync(): Promise<void>;
  finish(sync: boolean): Promise<void>;
}

/** The temporary name the new stream is written under until it holds the old file's bytes. */
export function resumeTempPath(path: string): string {
  return `${path}.resume`;
}

/**
 * The WAL bytes of the compressed .partial at `path`, as far as they decode (a
 * stream cut short by a crash decodes up to its last whole block); null when
 * there is no such file, it is empty, or nothing of it decodes (then it is
 * replaced, as before: pg_receivewal's own lz4 files, whose blocks are linked,
 * are not read here).
 */
export function decodedPartial(path: string, algorithm: ReceivedCompression, segmentSize: number): Buffer | null {
  let raw: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      if (fstatSync(fd).size === 0) return null;
    } finally {
      closeSync(fd);
    }
    raw = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw storageError('read', path, e);
  }
  const out = algorithm === 'gzip' ? gzipPrefix(raw) : lz4Prefix(raw);
  if (out.length === 0) return null;
  return out.length > segmentSize ? out.subarray(0, segmentSize) : out;
}

/**
 * What the gzip stream decodes to; where its end is damaged (a crash's torn
 * write), what its longest decodable beginning does (found by bisection).
 */
function gzipPrefix(raw: Buffer): Buffer {
  const decode = (n: number): Buffer | null => {
    try {
      return gunzipSync(raw.subarray(0, n), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch {
      return null;
    }
  };
  const whole = decode(raw.length);
  if (whole !== null) return whole;
  let good: Buffer = Buffer.alloc(0);
  let lo = 0;
  let hi = raw.length;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const out = decode(mid);
    if (out === null) hi = mid;
    else {
      lo = mid;
      good = out;
    }
  }
  return good;
}

/** The blocks of pgpitr's lz4 frames that are whole, decoded. */
function lz4Prefix(raw: Buffer): Buffer {
  const decoder = syncDecoder('lz4')!;
  const parts: Buffer[] = [];
  try {
    decoder.write(raw, (out) => parts.push(Buffer.from(out)));
  } catch {
    // what decoded before the failure stands
  }
  return Buffer.concat(parts);
}

/**
 * Writes `kept` and then the segment's later bytes through `inner` (whose file
 * is `temp`); `temp` replaces `path` once `kept` is in it and synced.
 */
export class ResumedWriter {
  private readonly ready: Promise<void>;
  private isReady = false;

  constructor(private readonly inner: InnerWriter, private readonly kept: Buffer, temp: string, private readonly path: string) {
    this.ready = (async () => {
      const wrote = inner.write(kept, 0);
      if (wrote) await wrote;
      await inner.sync();
      try {
        await fsp.rename(temp, path);
      } catch (e) {
        throw storageError('rename', temp, e);
      }
      await fsyncPath(dirname(path));
      this.isReady = true;
    })();
    this.ready.catch(() => {}); // reported by the next write, sync or finish
  }

  write(data: Buffer, offset: number): void | Promise<void> {
    if (!this.isReady) return this.ready.then(() => this.write(data, offset));
    const held = this.kept.length;
    if (offset >= held) return this.inner.write(data, offset);
    const n = Math.min(data.length, held - offset);
    if (!data.subarray(0, n).equals(this.kept.subarray(offset, offset + n))) {
      throw new PgpitrError(
        'ERR_CHECK',
        `${this.path} holds WAL that differs from what the server sends now for the same segment (at byte ${offset} or after): ` +
          'the directory holds another history of this timeline; move that file away and run again',
      );
    }
    if (n < data.length) return this.inner.write(data.subarray(n), held);
  }

  async sync(): Promise<void> {
    await this.ready;
    await this.inner.sync();
  }

  async finish(sync: boolean): Promise<void> {
    try {
      await this.ready;
    } catch (e) {
      await this.inner.finish(false).catch(() => {});
      throw e;
    }
    await this.inner.finish(sync);
  }
}
