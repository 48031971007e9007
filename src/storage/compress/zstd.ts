// zstd streams. Compression: @bokuweb/zstd-wasm (the reference library as
// WebAssembly, shipped in the npm package, no install script) compresses 4 MiB
// blocks into independent frames, on worker threads when `workers` > 1 (the
// default for client-side zstd is 2); concatenated frames are one valid zstd
// stream. Decompression: fzstd (pure JS, streaming), which accepts windows up to
// 32 MiB: PostgreSQL's server-side `long` mode (128 MiB) cannot be extracted.

import type { Transform } from 'node:stream';
import { createRequire } from 'node:module';
import { Decompress } from 'fzstd';
import { CodecTransform, CompressionError, corrupt } from './common.js';
import type { CodecStep, StepCodec } from './common.js';
import { ParallelBlockTransform, createPooledCompressor } from './parallel.js';

/** PostgreSQL accepts zstd's negative (fast) levels too. */
export const ZSTD_MIN_LEVEL = -131072;
export const ZSTD_MAX_LEVEL = 22;
export const ZSTD_DEFAULT_LEVEL = 3;
const BLOCK = 4 << 20;
const FEED = 256 * 1024;
const TARGET_OUT = 2 << 20;

interface ZstdWasm {
  init(): Promise<void>;
  compress(buf: Uint8Array, level?: number): Uint8Array;
}

let ready: Promise<ZstdWasm> | null = null;

/** Loads and initialises the WebAssembly module once per thread. */
export function loadZstdWasm(): Promise<ZstdWasm> {
  ready ??= (async () => {
    // The package's Node entry is CommonJS; load it through require.
    const mod = createRequire(import.meta.url)('@bokuweb/zstd-wasm') as ZstdWasm;
    await mod.init();
    return mod;
  })();
  return ready;
}

export function compressZstdBlock(z: ZstdWasm, block: Uint8Array, level: number): Buffer {
  const out = z.compress(block, level);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

export function createZstdCompressor(level: number, workers: number): Transform {
  if (workers > 1) return createPooledCompressor({ algorithm: 'zstd', level }, workers, BLOCK);
  const failed = (e: Error) => new CompressionError('ERR_COMPRESSION_FAILED', 'zstd', e.message, e);
  return new ParallelBlockTransform(
    async (block) => {
      try {
        return { out: Buffer.from(compressZstdBlock(await loadZstdWasm(), block, level)) };
      } catch (e) {
        throw failed(e as Error);
      }
    },
    BLOCK,
    1,
  );
}

class ZstdStreamDecoder implements StepCodec {
  private readonly parts: Uint8Array[] = [];
  private readonly decoder = new Decompress((chunk) => {
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

export function createZstdDecompressor(): Transform {
  return new CodecTransform(new ZstdStreamDecoder(), 'zstd');
}
