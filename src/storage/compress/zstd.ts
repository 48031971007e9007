// zstd streams. Compression: the system's libzstd through koffi (zstd-native.ts),
// or where it is missing @mongodb-js/zstd 1.x (napi-rs prebuilt binaries, no
// install script; it ignores the level), compresses 1 MiB blocks into complete
// frames on libuv's thread pool, several at once; concatenated frames are one
// valid zstd stream. Decompression: fzstd (pure JS), which streams one long frame as it
// arrives, including PostgreSQL's server-side `long` mode.

import { Transform as TransformStream } from 'node:stream';
import type { Transform } from 'node:stream';
import { createRequire } from 'node:module';
import { CodecTransform, CompressionError, corrupt } from './common.js';
import type { CodecStep, StepCodec } from './common.js';
import { ParallelBlockTransform } from './parallel.js';
import { nativeZstd } from './zstd-native.js';

// Loaded on first use: every backup imports this module, most never compress with zstd
// (the native addon alone costs ~9 ms of start-up).
const load = createRequire(import.meta.url);
const mongodbZstd = () => load('@mongodb-js/zstd') as typeof import('@mongodb-js/zstd');
const fzstd = () => load('fzstd') as typeof import('fzstd');

/** One zstd frame of `data` on the thread pool: libzstd at `level`, else @mongodb-js/zstd (level 3). */
export function compressFrame(data: Buffer, level: number): Promise<Buffer> {
  const native = nativeZstd();
  return native ? native.compress(data, level) : mongodbZstd().compress(data, level);
}

/** The content of whole zstd frames (a stored WAL file), natively where the frames record their size. */
export async function decompressFrames(data: Buffer): Promise<Buffer> {
  const out = await nativeZstd()?.decompress(data);
  return out ?? mongodbZstd().decompress(data);
}

const BLOCK = 1 << 20;
const FEED = 256 * 1024;
const TARGET_OUT = 2 << 20;

export function createZstdCompressor(level: number, workers: number): Transform {
  return new ParallelBlockTransform(
    (block) =>
      compressFrame(block, level).then(
        (out) => ({ out }),
        (e: Error) => Promise.reject(new CompressionError('ERR_COMPRESSION_FAILED', 'zstd', e.message, e)),
      ),
    BLOCK,
    Math.max(2, workers * 2),
  );
}

class ZstdStreamDecoder implements StepCodec {
  private readonly parts: Uint8Array[] = [];
  private readonly decoder = new (fzstd().Decompress)((chunk) => {
    this.parts.push(chunk);
  });
  private fed = 0;
  private ended = false;
  // fzstd inflates all it is given at once: feed less when the data compresses
  // well, so that one step yields a few MiB, not gigabytes of zeros.
  private feed = 16;

  step(input: Buffer, offset: number): CodecStep {
    const n = Math.min(this.feed, input.length - offset);
    this.fed += n;
    this.run(() => this.decoder.push(input.subarray(offset, offset + n), false));
    const out = this.take();
    // No output yet (a block is incomplete): feed more; output: size the next feed by the ratio.
    this.feed = out ? Math.max(16, Math.min(FEED, Math.floor((TARGET_OUT * n) / out.length))) : Math.min(FEED, this.feed * 2);
    return { read: n, out, pending: false };
  }

  finishStep(): CodecStep {
    if (!this.ended) {
      this.ended = true;
      if (this.fed === 0) throw corrupt('zstd', 'empty input: no zstd frame');
      this.run(() => this.decoder.push(new Uint8Array(0), true));
    }
    return { read: 0, out: this.take(), pending: false };
  }

  checkComplete(): void {}

  dispose(): void {}

  private run(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      throw corrupt('zstd', (e as Error).message, e);
    }
  }

  private take(): Buffer | null {
    if (this.parts.length === 0) return null;
    const out = this.parts.length === 1 ? Buffer.from(this.parts[0]!) : Buffer.concat(this.parts);
    this.parts.length = 0;
    return out;
  }
}

/**
 * A decoder for streams of whole frames that record their size, as pgpitr's own compressor
 * writes them (1 MiB of content each): each frame is decoded by libzstd on the thread pool, two
 * at a time, in order. Null where libzstd is missing (the caller streams through fzstd then).
 */
export function createZstdFrameDecoder(): Transform | null {
  const native = nativeZstd();
  return native ? new FrameDecoder(native) : null;
}

/** A frame of pgpitr's is at most this long (1 MiB of content, compressed; incompressible data grows a little). */
const MAX_FRAME = BLOCK + (BLOCK >> 4) + 1024;

class FrameDecoder extends TransformStream {
  private pending: Buffer = Buffer.alloc(0);
  private readonly inFlight: Promise<Buffer>[] = [];

  constructor(private readonly native: NonNullable<ReturnType<typeof nativeZstd>>) {
    super({ readableHighWaterMark: 4 * BLOCK, writableHighWaterMark: BLOCK });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.drainFrames(false).then(() => cb(), (e: Error) => cb(e));
  }

  override _flush(cb: (e?: Error | null) => void): void {
    this.drainFrames(true).then(() => cb(), (e: Error) => cb(e));
  }

  private async drainFrames(end: boolean): Promise<void> {
    for (;;) {
      const n = this.native.frameLength(this.pending);
      if (n === null) {
        if (end ? this.pending.length > 0 : this.pending.length > MAX_FRAME) {
          throw corrupt('zstd', end ? 'the stream ends inside a frame' : 'a frame is longer than pgpitr writes them');
        }
        break;
      }
      const frame = this.pending.subarray(0, n);
      this.pending = this.pending.subarray(n);
      this.inFlight.push(
        this.native.decompress(frame).then((out) => {
          if (out === null) throw corrupt('zstd', 'a frame does not record its size');
          return out;
        }),
      );
      this.inFlight[this.inFlight.length - 1]!.catch(() => {});
      if (this.inFlight.length >= 2) this.push(await this.inFlight.shift()!);
    }
    if (end) while (this.inFlight.length > 0) this.push(await this.inFlight.shift()!);
  }
}

export function createZstdDecompressor(): Transform {
  return new CodecTransform(new ZstdStreamDecoder(), 'zstd');
}
