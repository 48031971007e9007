// zstd streams: the reference libzstd (compiled to WebAssembly, see wasm.ts)
// driven through ZSTD_compressStream2 / ZSTD_decompressStream, so one long
// frame split anywhere decodes, as do concatenated and skippable frames.
// Node's native zlib zstd is used instead when the runtime has it (Node >= 22.15).

import * as zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { promisify } from 'node:util';
import { CodecTransform, CompressionError, compressWhole, corrupt, mapStreamErrors } from './common.js';
import type { CodecStep, StepCodec } from './common.js';
import { createPooledCompressor, ParallelBlockTransform } from './parallel.js';
import { CodecInstance } from './wasm.js';

// zstd.h enum values (stable ABI).
const ZSTD_c_compressionLevel = 100;
const ZSTD_c_contentSizeFlag = 200;
const ZSTD_c_checksumFlag = 201;
const ZSTD_c_enableLongDistanceMatching = 160;
const ZSTD_d_windowLogMax = 100;
const ZSTD_e_continue = 0;
const ZSTD_e_end = 2;

/** Same limits as the zstd library and PostgreSQL's compression specifications. */
export const ZSTD_MIN_LEVEL = -131072;
export const ZSTD_MAX_LEVEL = 22;
export const ZSTD_DEFAULT_LEVEL = 3;
/** Accept frames with windows up to 1 GiB (zstd's CLI default stops at 128 MiB, `--long` uses 128 MiB). */
const WINDOW_LOG_MAX = 30;

const IN_CAP = 1 << 20;
const COMPRESS_OUT_CAP = 1 << 20;
const DECOMPRESS_OUT_CAP = 1 << 20;

export interface ZstdOptions {
  level: number;
  long: boolean;
}

interface NativeZstd {
  zstdCompress?: (buf: Buffer, options: object, callback: (e: Error | null, out: Buffer) => void) => void;
  createZstdCompress(options: object): Transform;
  createZstdDecompress(options: object): Transform;
  constants: Record<string, number>;
}

/** zlib's zstd streams when this Node has them (22.15+), otherwise undefined. */
function nativeZstd(): NativeZstd | undefined {
  const z = zlib as unknown as Partial<NativeZstd>;
  if (process.env['PGPITR_ZSTD_WASM'] === '1') return undefined;
  if (typeof z.createZstdCompress !== 'function' || typeof z.createZstdDecompress !== 'function' || !z.constants) {
    return undefined;
  }
  return z as NativeZstd;
}

abstract class ZstdCodec implements StepCodec {
  protected readonly w = new CodecInstance();
  protected readonly inPtr: number;
  protected readonly outPtr: number;
  protected readonly posPtr: number;
  protected inLen = 0;
  protected inPos = 0;
  protected outFull = false;
  protected disposed = false;

  constructor(protected readonly outCap: number) {
    this.inPtr = this.w.malloc(IN_CAP);
    this.outPtr = this.w.malloc(outCap);
    this.posPtr = this.w.malloc(8);
    if (!this.inPtr || !this.outPtr || !this.posPtr) throw this.failure('out of memory');
  }

  protected failure(message: string): CompressionError {
    return new CompressionError('ERR_COMPRESSION_FAILED', 'zstd', message);
  }

  protected errorName(code: number): string {
    return this.w.cString(this.w.x.ZSTD_getErrorName(code));
  }

  protected isError(code: number): boolean {
    return this.w.x.ZSTD_isError(code) !== 0;
  }

  /** Moves the next slice of `input` into codec memory once the previous one is consumed. */
  protected fill(input: Buffer, offset: number): number {
    if (this.inPos < this.inLen || offset >= input.length) return 0;
    const n = Math.min(IN_CAP, input.length - offset);
    this.w.heap().set(input.subarray(offset, offset + n), this.inPtr);
    this.inLen = n;
    this.inPos = 0;
    return n;
  }

  /** Runs the streaming call with the current buffers; returns [zstd return value, output]. */
  protected run(call: (pos: number) => number): [number, Buffer | null] {
    const { w, posPtr } = this;
    w.writeU32(posPtr, 0);
    w.writeU32(posPtr + 4, this.inPos);
    const ret = call(posPtr) >>> 0;
    if (this.isError(ret)) return [ret, null];
    const produced = w.readU32(posPtr);
    this.inPos = w.readU32(posPtr + 4);
    this.outFull = produced === this.outCap;
    return [ret, produced > 0 ? w.copyOut(this.outPtr, produced) : null];
  }

  abstract step(input: Buffer, offset: number): CodecStep;
  abstract finishStep(): CodecStep;
  abstract checkComplete(): void;
  abstract dispose(): void;
}

class ZstdCompressCodec extends ZstdCodec {
  private readonly cctx: number;

  constructor(opts: ZstdOptions) {
    super(COMPRESS_OUT_CAP);
    const x = this.w.x;
    this.cctx = x.ZSTD_createCCtx() >>> 0;
    if (!this.cctx) throw this.failure('out of memory');
    const set = (param: number, value: number): void => {
      const r = x.ZSTD_CCtx_setParameter(this.cctx, param, value) >>> 0;
      if (this.isError(r)) throw this.failure(`cannot set parameter ${param}=${value}: ${this.errorName(r)}`);
    };
    set(ZSTD_c_compressionLevel, opts.level);
    set(ZSTD_c_checksumFlag, 1); // like the zstd CLI: lets `zstd -t` and our decoder verify content
    set(ZSTD_c_contentSizeFlag, 0); // unknown in streaming mode anyway
    if (opts.long) set(ZSTD_c_enableLongDistanceMatching, 1); // as PostgreSQL's `long` option: window 128 MiB
  }

  private call(endOp: number): number {
    const { cctx, outPtr, outCap, inPtr, inLen } = this;
    return this.w.x.ZSTD_compressStream2_simpleArgs(cctx, outPtr, outCap, this.posPtr, inPtr, inLen, this.posPtr + 4, endOp);
  }

  step(input: Buffer, offset: number): CodecStep {
    const read = this.fill(input, offset);
    if (this.inPos >= this.inLen && !this.outFull) return { read, out: null, pending: false };
    const [ret, out] = this.run(() => this.call(ZSTD_e_continue));
    if (this.isError(ret)) throw this.failure(`compression failed: ${this.errorName(ret)}`);
    return { read, out, pending: this.inPos < this.inLen || this.outFull };
  }

  finishStep(): CodecStep {
    const [ret, out] = this.run(() => this.call(ZSTD_e_end));
    if (this.isError(ret)) throw this.failure(`compression failed: ${this.errorName(ret)}`);
    return { read: 0, out, pending: ret !== 0 };
  }

  checkComplete(): void {}

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.w.x.ZSTD_freeCCtx(this.cctx);
  }
}

class ZstdDecompressCodec extends ZstdCodec {
  private readonly dctx: number;
  private lastRet = 0;
  private sawInput = false;

  constructor() {
    super(DECOMPRESS_OUT_CAP);
    const x = this.w.x;
    this.dctx = x.ZSTD_createDCtx() >>> 0;
    if (!this.dctx) throw this.failure('out of memory');
    const r = x.ZSTD_DCtx_setParameter(this.dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX) >>> 0;
    if (this.isError(r)) throw this.failure(`cannot set window limit: ${this.errorName(r)}`);
  }

  step(input: Buffer, offset: number): CodecStep {
    const read = this.fill(input, offset);
    if (this.inPos >= this.inLen && !this.outFull) return { read, out: null, pending: false };
    this.sawInput = true;
    const { dctx, outPtr, outCap, inPtr, inLen } = this;
    const before = this.inPos;
    const [ret, out] = this.run((pos) =>
      this.w.x.ZSTD_decompressStream_simpleArgs(dctx, outPtr, outCap, pos, inPtr, inLen, pos + 4),
    );
    if (this.isError(ret)) throw corrupt('zstd', `invalid compressed data: ${this.errorName(ret)}`);
    // A drain-only call right after a frame ended reports a next frame's header size; ignore it.
    if (this.inPos > before || out !== null) this.lastRet = ret;
    return { read, out, pending: this.inPos < this.inLen || this.outFull };
  }

  finishStep(): CodecStep {
    // Only output still held by the decoder is left to drain; no new frame may start here.
    if (!this.outFull) return { read: 0, out: null, pending: false };
    return this.step(Buffer.alloc(0), 0);
  }

  checkComplete(): void {
    if (!this.sawInput) throw corrupt('zstd', 'unexpected end of input: no data');
    if (this.lastRet !== 0) throw corrupt('zstd', 'unexpected end of input: the last frame is truncated');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.w.x.ZSTD_freeDCtx(this.dctx);
  }
}

/** Compresses independent blocks into one complete frame each (for parallel compression). */
export class ZstdBlockCompressor {
  private readonly codec: ZstdCompressCodec;

  constructor(opts: ZstdOptions) {
    this.codec = new ZstdCompressCodec(opts);
  }

  compress(block: Buffer): Uint8Array {
    return compressWhole(this.codec, block);
  }

  dispose(): void {
    this.codec.dispose();
  }
}

const PARALLEL_BLOCK = 4 << 20;
const PARALLEL_BLOCK_LONG = 16 << 20;

export function createZstdCompressor(opts: ZstdOptions, workers = 1): Transform {
  const native = nativeZstd();
  const blockSize = opts.long ? PARALLEL_BLOCK_LONG : PARALLEL_BLOCK;
  if (native) {
    const c = native.constants;
    const params: Record<number, number> = {
      [c['ZSTD_c_compressionLevel']!]: opts.level,
      [c['ZSTD_c_checksumFlag']!]: 1,
    };
    if (opts.long) params[c['ZSTD_c_enableLongDistanceMatching']!] = 1;
    const failed = (e: Error): CompressionError => new CompressionError('ERR_COMPRESSION_FAILED', 'zstd', e.message, e);
    if (workers > 1 && typeof native.zstdCompress === 'function') {
      const zstdCompress = promisify(native.zstdCompress) as (b: Buffer, o: object) => Promise<Buffer>;
      return new ParallelBlockTransform(
        (block) => zstdCompress(block, { params }).catch((e: Error) => Promise.reject(failed(e))),
        blockSize,
        workers * 2,
      );
    }
    return mapStreamErrors(native.createZstdCompress({ params, chunkSize: COMPRESS_OUT_CAP }), failed);
  }
  if (workers > 1) return createPooledCompressor({ algorithm: 'zstd', level: opts.level, long: opts.long }, workers, blockSize);
  return new CodecTransform(new ZstdCompressCodec(opts), 'zstd');
}

export function createZstdDecompressor(): Transform {
  const native = nativeZstd();
  if (native) {
    const c = native.constants;
    return mapStreamErrors(
      native.createZstdDecompress({
        params: { [c['ZSTD_d_windowLogMax']!]: WINDOW_LOG_MAX },
        chunkSize: DECOMPRESS_OUT_CAP,
      }),
      (e) => corrupt('zstd', e.message, e),
    );
  }
  return new CodecTransform(new ZstdDecompressCodec(), 'zstd');
}
