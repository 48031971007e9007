// A compressed .partial that an earlier run left, taken up again without ever
// holding less than it held. receive-wal resumes at the start of that segment,
// as pg_receivewal does, and a compressed stream cannot be rewritten in place:
// truncating the file at the first new byte would leave it shorter than before
// until the server had sent the same bytes again, and if the connection broke
// meanwhile, a server without a slot could recycle that WAL before the next
// start.
//
// So the server's bytes go into a new stream under a temporary name, while the
// old file stays: it holds what the new one does not yet (the server's bytes
// are compared with what it decodes to, so both say the same). Once the new
// stream holds as much, it is synced and renamed over the old file. Where the
// server's bytes differ from the old file's (a crash's torn write that decoded
// into garbage: an unfinished gzip stream has no checksum), the server's win:
// the old file counts only up to there. A segment the connection leaves
// before the new stream has caught up keeps the old file, and the new one goes.

import { promises as fsp, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import * as zlib from 'node:zlib';
import { storageError } from '../common/errors.js';
import { syncDecoder } from '../storage/compress/sync-decoder.js';
import { BLOCK_MAX, FRAME_MAGIC } from '../storage/compress/lz4.js';
import type { ReceivedCompression } from './received-file-names.js';
// A type only (segment-writer.ts makes a ResumedWriter): nothing of it is loaded from here.
import type { SegmentWriter } from './segment-writer.js';

export interface ResumeOptions {
  /** Sync the directory after the rename (the receiver's --no-sync says no). */
  sync: boolean;
  syncDirectory: (dir: string) => Promise<void>;
  log?: ((line: string) => void) | undefined;
}

/** The temporary name the new stream is written under until it holds the old file's bytes. */
export function resumeTempPath(path: string): string {
  return `${path}.resume`;
}

/** Where a .partial that cannot be decoded here is kept (pg_receivewal's own lz4 file, say). */
export function undecodedPath(path: string): string {
  return `${path}.undecoded`;
}

/** Whether an earlier run left a non-empty file at `path`. */
export function leftByEarlierRun(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

/**
 * The WAL bytes of the compressed .partial at `path`, as far as they decode (gzip: up to where
 * the stream ends or stops making sense; lz4: its whole frames, each ended at a sync), at most a
 * segment; `size`, the file's. The file is synced first: what an earlier run wrote and a kill left
 * in the page cache only is made durable before any position it holds is reported flushed.
 * Nothing may decode (pg_receivewal's own lz4 files, whose blocks are linked, are not read here).
 */
export async function decodedPartial(path: string, algorithm: ReceivedCompression, segmentSize: number): Promise<{ bytes: Buffer; size: number }> {
  let raw: Buffer;
  try {
    const fh = await fsp.open(path, 'r');
    try {
      await fh.sync();
      raw = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw storageError('read', path, e);
  }
  const out = algorithm === 'gzip' ? await gzipPrefix(raw) : lz4Prefix(raw);
  return { bytes: out.length > segmentSize ? out.subarray(0, segmentSize) : out, size: raw.length };
}

/** What a gzip stream decodes to before it ends or fails (on the thread pool: receiving goes on). */
function gzipPrefix(raw: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const gz = zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH });
    gz.on('data', (b: Buffer) => parts.push(b));
    gz.on('error', () => resolve(Buffer.concat(parts)));
    gz.on('end', () => resolve(Buffer.concat(parts)));
    gz.end(raw);
  });
}

/** The frames of pgpitr's lz4 stream that are whole (end mark read), decoded. */
function lz4Prefix(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let p = 0;
  while (raw.length - p >= 7 && raw.readUInt32LE(p) === FRAME_MAGIC) {
    const flags = raw[p + 4]!;
    if (flags >> 6 !== 1 || (flags & 0x20) === 0 || flags & 0x1d || BLOCK_MAX[(raw[p + 5]! >> 4) & 7] === undefined) break; // not a frame pgpitr writes
    let q = p + 7;
    let whole = false;
    while (raw.length - q >= 4) {
      const field = raw.readUInt32LE(q);
      q += 4;
      if (field === 0) {
        whole = true;
        break;
      }
      q += field & 0x7fffffff;
    }
    if (!whole || q > raw.length) break;
    const decoder = syncDecoder('lz4')!;
    const frame: Buffer[] = [];
    try {
      decoder.write(raw.subarray(p, q), (out) => frame.push(Buffer.from(out)));
      decoder.end();
    } catch {
      break;
    }
    parts.push(...frame);
    p = q;
  }
  return Buffer.concat(parts);
}

/** The first index where a and b (of one length) differ, or -1. */
function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  let i = 0;
  while (a[i] === b[i]) i++;
  return i;
}

/**
 * The writer of a segment whose compressed .partial an earlier run left at `path`: the new stream
 * (through `inner`, whose file is `temp`) replaces it once it holds as much.
 */
export class ResumedWriter {
  /**
   * What the old file decodes to, once decoded: the server's bytes are compared with it, and the
   * new stream takes over once it holds as much (empty: a file nothing of which decodes is moved aside).
   */
  private kept: Buffer | null = null;
  private readonly decoded: Promise<void>;
  /** Bytes of the segment written into the new stream, from its start. */
  private written = 0;
  private swap: Promise<void> | null = null;

  constructor(private readonly inner: SegmentWriter, private readonly path: string, private readonly temp: string, algorithm: ReceivedCompression, segmentSize: number, private readonly o: ResumeOptions) {
    this.decoded = decodedPartial(path, algorithm, segmentSize).then(async ({ bytes, size }) => {
      if (bytes.length > 0 || size === 0) {
        this.kept = bytes;
        return;
      }
      // A file that decodes to nothing here is not known to hold nothing: it is moved aside, kept,
      // and the new stream takes its name at once (a position reported flushed is then in it).
      let aside = undecodedPath(path);
      // One moved aside before (pg_receivewal and pgpitr run in turn) is not written over.
      for (let n = 1; await fsp.access(aside).then(() => true, () => false); n++) aside = `${undecodedPath(path)}.${n}`;
      await this.move(path, aside);
      this.o.log?.(`warning: ${path} (${size} bytes) cannot be decoded here: moved to ${aside}, the segment is received again`);
      this.kept = bytes;
    });
    this.decoded.catch(() => {}); // reported by the first write, sync or finish
  }

  write(data: Buffer, offset: number): void | Promise<void> {
    if (this.kept === null) return this.decoded.then(() => this.write(data, offset));
    const held = this.kept.length;
    if (offset < held) {
      const n = Math.min(data.length, held - offset);
      const at = firstDifference(data.subarray(0, n), this.kept.subarray(offset, offset + n));
      if (at !== -1) {
        this.o.log?.(`warning: ${this.path} decodes to other bytes than the server sends from byte ${offset + at} of the segment on (an end damaged by a crash?): the server's replace them`);
        this.kept = this.kept.subarray(0, offset + at);
      }
    }
    const wrote = this.inner.write(data, offset);
    this.written = offset + data.length;
    if (this.swap === null && this.written >= this.kept.length) this.startSwap();
    return wrote;
  }

  private startSwap(): void {
    this.swap = (async () => {
      await this.inner.sync();
      await this.move(this.temp, this.path);
    })();
    this.swap.catch(() => {}); // reported by the next sync or finish
  }

  /** rename(2), and the directory synced after it unless --no-sync. */
  private async move(from: string, to: string): Promise<void> {
    try {
      await fsp.rename(from, to);
    } catch (e) {
      throw storageError('rename', from, e);
    }
    if (this.o.sync) await this.o.syncDirectory(dirname(to));
  }

  /** What was written is decodable and durable: in the new file once it has taken over, else in the old one, which holds it too. */
  async sync(): Promise<void> {
    await this.decoded;
    await this.inner.sync();
    if (this.swap !== null) await this.swap;
  }

  async finish(sync: boolean): Promise<void> {
    try {
      await this.decoded;
      if (this.swap === null && this.written >= this.kept!.length) this.startSwap();
      // No swap: the old file holds more than the server sent again, and stays as it is.
      if (this.swap === null) return await this.abandon();
      await this.swap;
    } catch (e) {
      await this.abandon();
      throw e;
    }
    await this.inner.finish(sync);
  }

  /** The new stream is not kept: closed, its temporary file removed. */
  private async abandon(): Promise<void> {
    await this.inner.finish(false).catch(() => {});
    try {
      unlinkSync(this.temp);
    } catch {
      /* renamed, or never made */
    }
  }
}
