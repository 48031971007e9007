// lz4 frame streams: the reference lz4frame library (compiled to WebAssembly,
// see wasm.ts). The decoder takes what `lz4` and PostgreSQL write: linked or
// independent blocks, block and content checksums, content size, concatenated
// and skippable frames. (Not the pre-frame "legacy" format of `lz4 -l`.)

import type { Transform } from 'node:stream';
import { CodecTransform, CompressionError, compressWhole, corrupt } from './common.js';
import type { CodecStep, StepCodec } from './common.js';
import { createPooledCompressor } from './parallel.js';
import { CodecInstance } from './wasm.js';

export const LZ4_MIN_LEVEL = 1;
export const LZ4_MAX_LEVEL = 12;
/** PostgreSQL's default is 0, lz4's "fast" mode, which is the same as level 1. */
export const LZ4_DEFAULT_LEVEL = 1;

// Frames we write: 4 MiB independent blocks and a content checksum, as `lz4` does by default.
const BLOCK_SIZE_ID_4MB = 7;
const IN_CAP = 1 << 20;
const PARALLEL_BLOCK = 4 << 20; // one lz4 block per frame
const DECOMPRESS_OUT_CAP = 4 << 20; // a whole 4 MiB block decodes straight into it

class Lz4Compressor implements StepCodec {
  private readonly w = new CodecInstance();
  private readonly cctx: number;
  private readonly inPtr: number;
  private readonly outPtr: number;
  private readonly outCap: number;
  private started = false;
  private disposed = false;

  constructor(private readonly level: number) {
    const x = this.w.x;
    // + room for the frame header (at most 19 bytes) written before the first block.
    this.outCap = (x.wz_lz4f_compress_bound(IN_CAP, level, BLOCK_SIZE_ID_4MB, 0, 1, 0) >>> 0) + 64;
    this.cctx = x.wz_lz4f_create_cctx() >>> 0;
    this.inPtr = this.w.malloc(IN_CAP);
    this.outPtr = this.w.malloc(this.outCap);
    if (!this.cctx || !this.inPtr || !this.outPtr) throw this.failure('out of memory');
  }

  private failure(message: string): CompressionError {
    return new CompressionError('ERR_COMPRESSION_FAILED', 'lz4', message);
  }

  private check(ret: number): number {
    const r = ret >>> 0;
    if (this.w.x.wz_lz4f_is_error(r)) {
      throw this.failure(`compression failed: ${this.w.cString(this.w.x.wz_lz4f_error_name(r))}`);
    }
    return r;
  }

  /** The frame header is written at the start of the first step's output. */
  private header(): number {
    if (this.started) return 0;
    this.started = true;
    const x = this.w.x;
    return this.check(x.wz_lz4f_compress_begin(this.cctx, this.outPtr, this.outCap, this.level, BLOCK_SIZE_ID_4MB, 0, 1, 0));
  }

  step(input: Buffer, offset: number): CodecStep {
    const n = Math.min(IN_CAP, input.length - offset);
    if (n <= 0) return { read: 0, out: null, pending: false };
    const head = this.header();
    this.w.heap().set(input.subarray(offset, offset + n), this.inPtr);
    const x = this.w.x;
    const len = this.check(x.wz_lz4f_compress_update(this.cctx, this.outPtr + head, this.outCap - head, this.inPtr, n));
    const total = head + len;
    return { read: n, out: total > 0 ? this.w.copyOut(this.outPtr, total) : null, pending: false };
  }

  finishStep(): CodecStep {
    const head = this.header();
    const len = this.check(this.w.x.wz_lz4f_compress_end(this.cctx, this.outPtr + head, this.outCap - head));
    this.started = false; // a further step begins a new frame
    return { read: 0, out: this.w.copyOut(this.outPtr, head + len), pending: false };
  }

  checkComplete(): void {}

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.w.x.wz_lz4f_free_cctx(this.cctx);
  }
}

class Lz4Decompressor implements StepCodec {
  private readonly w = new CodecInstance();
  private readonly dctx: number;
  private readonly inPtr: number;
  private readonly outPtr: number;
  private readonly sizesPtr: number;
  private inLen = 0;
  private inPos = 0;
  private outFull = false;
  private lastHint = 0;
  private sawInput = false;
  private disposed = false;

  constructor() {
    this.dctx = this.w.x.wz_lz4f_create_dctx() >>> 0;
    this.inPtr = this.w.malloc(IN_CAP);
    this.outPtr = this.w.malloc(DECOMPRESS_OUT_CAP);
    this.sizesPtr = this.w.malloc(8);
    if (!this.dctx || !this.inPtr || !this.outPtr || !this.sizesPtr) {
      throw new CompressionError('ERR_COMPRESSION_FAILED', 'lz4', 'out of memory');
    }
  }

  step(input: Buffer, offset: number): CodecStep {
    const w = this.w;
    let read = 0;
    if (this.inPos >= this.inLen && offset < input.length) {
      read = Math.min(IN_CAP, input.length - offset);
      w.heap().set(input.subarray(offset, offset + read), this.inPtr);
      this.inLen = read;
      this.inPos = 0;
    }
    if (this.inPos >= this.inLen && !this.outFull) return { read, out: null, pending: false };
    this.sawInput = true;
    w.writeU32(this.sizesPtr, DECOMPRESS_OUT_CAP);
    w.writeU32(this.sizesPtr + 4, this.inLen - this.inPos);
    const hint = w.x.wz_lz4f_decompress(this.dctx, this.outPtr, this.inPtr + this.inPos, this.sizesPtr) >>> 0;
    if (w.x.wz_lz4f_is_error(hint)) {
      throw corrupt('lz4', `invalid compressed data: ${w.cString(w.x.wz_lz4f_error_name(hint))}`);
    }
    const produced = w.readU32(this.sizesPtr);
    const consumed = w.readU32(this.sizesPtr + 4);
    this.inPos += consumed;
    this.outFull = produced === DECOMPRESS_OUT_CAP;
    // A call that only checked for more output right after a frame ended returns the
    // header size of a next frame; that says nothing about truncation.
    if (consumed > 0 || produced > 0) this.lastHint = hint;
    return {
      read,
      out: produced > 0 ? w.copyOut(this.outPtr, produced) : null,
      pending: this.inPos < this.inLen || this.outFull,
    };
  }

  finishStep(): CodecStep {
    if (!this.outFull) return { read: 0, out: null, pending: false };
    return this.step(Buffer.alloc(0), 0);
  }

  checkComplete(): void {
    if (!this.sawInput) throw corrupt('lz4', 'unexpected end of input: no data');
    if (this.lastHint !== 0) throw corrupt('lz4', 'unexpected end of input: the last frame is truncated');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.w.x.wz_lz4f_free_dctx(this.dctx);
  }
}

export function createLz4Compressor(level: number, workers = 1): Transform {
  if (workers > 1) return createPooledCompressor({ algorithm: 'lz4', level, long: false }, workers, PARALLEL_BLOCK);
  return new CodecTransform(new Lz4Compressor(level), 'lz4');
}

/** Compresses independent blocks into one complete frame each (for parallel compression). */
export class Lz4BlockCompressor {
  private readonly codec: Lz4Compressor;

  constructor(level: number) {
    this.codec = new Lz4Compressor(level);
  }

  compress(block: Buffer): Uint8Array {
    return compressWhole(this.codec, block);
  }

  dispose(): void {
    this.codec.dispose();
  }
}

export function createLz4Decompressor(): Transform {
  return new CodecTransform(new Lz4Decompressor(), 'lz4');
}
