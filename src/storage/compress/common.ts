// Shared pieces of the compression streams: the error type, and CodecTransform,
// a stream.Transform that drives a step-wise codec in bounded output pieces and
// stops producing as soon as the reader stops reading (real backpressure even
// when 1 byte of input expands to gigabytes).

import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

export type CompressionAlgorithm = 'gzip' | 'lz4' | 'zstd';

export type CompressionErrorCode =
  | 'ERR_COMPRESSION_CORRUPT' // the compressed input is damaged, truncated or not in this format
  | 'ERR_COMPRESSION_SPEC' // invalid level / option for the algorithm
  | 'ERR_COMPRESSION_FAILED'; // the codec itself failed (out of memory, internal error)

export class CompressionError extends Error {
  readonly code: CompressionErrorCode;
  readonly algorithm: CompressionAlgorithm;

  constructor(code: CompressionErrorCode, algorithm: CompressionAlgorithm, message: string, cause?: unknown) {
    super(`${algorithm}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'CompressionError';
    this.code = code;
    this.algorithm = algorithm;
  }
}

export function corrupt(algorithm: CompressionAlgorithm, message: string, cause?: unknown): CompressionError {
  return new CompressionError('ERR_COMPRESSION_CORRUPT', algorithm, message, cause);
}

/**
 * Makes a Node stream (zlib's) report its errors as `wrap(error)`: errors reach
 * 'error' listeners and pipeline() through _destroy's callback, so map them there.
 */
export function mapStreamErrors<T extends Transform>(stream: T, wrap: (e: Error) => Error): T {
  const original = stream._destroy.bind(stream);
  stream._destroy = (error, callback) => {
    original(error, (e) => callback(e ? wrap(e) : e));
  };
  return stream;
}

/** One step of a codec: what it took from the caller's buffer and what it produced. */
export interface CodecStep {
  /** Bytes taken from `input` starting at `offset`. */
  read: number;
  /** Output of this step (already copied out of codec memory), or null. */
  out: Buffer | null;
  /** True when the codec still holds input or output that another step (even without new input) will process. */
  pending: boolean;
}

/** A synchronous, incremental codec. Each step produces a bounded amount of output. */
export interface StepCodec {
  step(input: Buffer, offset: number): CodecStep;
  /** Steps after the input ended; must be called until `pending` is false. */
  finishStep(): CodecStep;
  /** Called once everything was flushed; throws if the input ended in the middle of a frame. */
  checkComplete(): void;
  /** Releases native memory; idempotent. */
  dispose(): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * Runs a compressing StepCodec over one whole block and finishes the frame; the
 * codec can then start the next frame. Returns bytes in a buffer of their own
 * (not from Node's shared pool), so its ArrayBuffer may be transferred.
 */
export function compressWhole(codec: StepCodec, block: Buffer): Uint8Array {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const s = codec.step(block, offset);
    offset += s.read;
    if (s.out) parts.push(s.out);
    if (!s.pending && offset >= block.length) break;
  }
  for (;;) {
    const s = codec.finishStep();
    if (s.out) parts.push(s.out);
    if (!s.pending) break;
  }
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Drives a StepCodec. Output is pushed one bounded piece at a time; when push()
 * reports a full buffer the loop parks until _read() is called again, so memory
 * stays bounded whatever the compression ratio.
 */
export class CodecTransform extends Transform {
  private readonly codec: StepCodec;
  private readonly algorithm: CompressionAlgorithm;
  private input: Buffer = EMPTY;
  private offset = 0;
  private finishing = false;
  private callback: TransformCallback | null = null;
  private parked = false;
  private pumping = false;

  constructor(codec: StepCodec, algorithm: CompressionAlgorithm) {
    super({ readableHighWaterMark: 256 * 1024 });
    this.codec = codec;
    this.algorithm = algorithm;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!Buffer.isBuffer(chunk)) {
      callback(new TypeError(`${this.algorithm}: expected Buffer chunks`));
      return;
    }
    this.input = chunk;
    this.offset = 0;
    this.callback = callback;
    this.pump();
  }

  override _flush(callback: TransformCallback): void {
    this.input = EMPTY;
    this.offset = 0;
    this.finishing = true;
    this.callback = callback;
    this.pump();
  }

  override _read(size: number): void {
    if (this.parked) {
      this.parked = false;
      this.pump();
    }
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.codec.dispose();
    callback(error);
  }

  private pump(): void {
    if (this.pumping || this.callback === null) return;
    this.pumping = true;
    let finished = false;
    let error: Error | undefined;
    try {
      for (;;) {
        const s = this.finishing ? this.codec.finishStep() : this.codec.step(this.input, this.offset);
        this.offset += s.read;
        const more = s.pending || this.offset < this.input.length;
        const ok = s.out === null || s.out.length === 0 || this.push(s.out);
        if (!more) {
          if (this.finishing) {
            this.codec.checkComplete();
            this.codec.dispose();
          }
          this.input = EMPTY;
          finished = true;
          break;
        }
        if (this.destroyed) break;
        if (!ok) {
          this.parked = true; // resumed by _read()
          break;
        }
      }
    } catch (e) {
      this.codec.dispose();
      error = e instanceof Error ? e : new Error(String(e));
      finished = true;
    }
    this.pumping = false;
    // Outside the pumping section: the callback may synchronously start the next _transform.
    if (finished) this.done(error);
  }

  private done(error?: Error): void {
    const cb = this.callback;
    this.callback = null;
    cb?.(error);
  }
}
