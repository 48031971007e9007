// Synchronous decoders of objects as pgpitr stores them, for code that runs
// on a worker thread of its own (restore's file copiers): stored bytes go in
// by chunks, decoded bytes come out through a callback as views of one buffer
// reused for the whole object, so that decoding a gigabyte allocates a few
// megabytes, not a gigabyte of short-lived buffers the kernel must fault in.
//
// What they decode is what pgpitr writes: zstd frames that record their
// content size (libzstd one frame at a time), lz4 frames of independent blocks
// without block or content checksums (liblz4, or the JavaScript block decoder
// where liblz4 is missing). Anything else (gzip, a frame written by another
// tool) is declined by syncDecoder() returning null or by an UnsupportedInput
// error, possibly after earlier frames were decoded: the caller then discards
// what it wrote and uses the streaming decoders.

import { corrupt } from './common.js';
import { giveBack, takeBuffer } from '../../common/spare-buffers.js';
import { decodeLz4Block } from './lz4-block.js';
import { BLOCK_MAX, FRAME_MAGIC, SKIPPABLE_MAGIC, SKIPPABLE_MASK } from './lz4.js';
import { nativeLz4 } from './lz4-native.js';
import { nativeZstd } from './zstd-native.js';
import type { NativeZstd } from './zstd-native.js';

export type Emit = (out: Buffer) => void;

export interface SyncDecoder {
  /** Feeds stored bytes; decoded views handed to emit are valid only until emit returns. */
  write(chunk: Buffer, emit: Emit): void;
  /** The stored bytes are all in: throws when they end inside a frame. */
  end(): void;
}

/** The input is valid but not in a form these decoders take: decode it with the streaming ones. */
export class UnsupportedInput extends Error {}

export type StoredCompression = 'none' | 'gzip' | 'lz4' | 'zstd';

/** A decoder for `compression`, or null where only the streaming decoders can do it. */
export function syncDecoder(compression: StoredCompression): SyncDecoder | null {
  if (compression === 'none') return { write: (chunk, emit) => emit(chunk), end: () => {} };
  if (compression === 'lz4') return new Lz4Frames();
  if (compression === 'zstd') {
    const native = nativeZstd();
    return native ? new ZstdFrames(native) : null;
  }
  return null;
}

/** Stored bytes not yet decoded, in one growing buffer. */
abstract class Accumulating implements SyncDecoder {
  private input = Buffer.allocUnsafeSlow(0);
  private length = 0;
  protected output = Buffer.allocUnsafeSlow(0);

  write(chunk: Buffer, emit: Emit): void {
    if (this.length + chunk.length > this.input.length) {
      const bigger = takeBuffer(Math.max(this.length + chunk.length, this.input.length * 2, 1 << 20));
      this.input.copy(bigger, 0, 0, this.length);
      giveBack(this.input);
      this.input = bigger;
    }
    chunk.copy(this.input, this.length);
    this.length += chunk.length;
    const used = this.decode(this.input.subarray(0, this.length), emit);
    this.input.copyWithin(0, used, this.length);
    this.length -= used;
  }

  end(): void {
    if (this.length > 0) this.truncated();
    // The decoder is done: its buffers serve the next one on this thread.
    giveBack(this.input);
    giveBack(this.output);
    this.input = this.output = Buffer.alloc(0);
  }

  /** Decodes the whole units at the start of data; the bytes consumed. */
  protected abstract decode(data: Buffer, emit: Emit): number;
  protected abstract truncated(): never;

  protected outputOf(size: number): Buffer {
    if (this.output.length < size) {
      giveBack(this.output);
      this.output = takeBuffer(size);
    }
    return this.output.subarray(0, size);
  }
}

/** A frame is never longer than this: pgpitr's hold 1 MiB of content; a longer one is refused as damaged. */
const ZSTD_MAX_FRAME = (1 << 20) + (1 << 16) + 1024;
const ZSTD_MAX_CONTENT = 8 << 20;

class ZstdFrames extends Accumulating {
  constructor(private readonly native: NativeZstd) {
    super();
  }

  protected decode(data: Buffer, emit: Emit): number {
    let used = 0;
    for (;;) {
      const rest = data.subarray(used);
      const n = this.native.frameLength(rest);
      if (n === null) {
        if (rest.length > ZSTD_MAX_FRAME) throw corrupt('zstd', 'a frame is longer than pgpitr writes them');
        return used;
      }
      const frame = rest.subarray(0, n);
      const size = this.native.frameContentSize(frame);
      if (size === null) throw new UnsupportedInput('a zstd frame does not record its size');
      if (size > ZSTD_MAX_CONTENT) throw new UnsupportedInput('a zstd frame is larger than pgpitr writes them');
      let got: number;
      try {
        got = this.native.decompressInto(frame, this.outputOf(size));
      } catch (e) {
        throw corrupt('zstd', (e as Error).message, e);
      }
      if (got !== size) throw corrupt('zstd', `a frame decodes to ${got} bytes, it records ${size}`);
      emit(this.output.subarray(0, got));
      used += n;
    }
  }

  protected truncated(): never {
    throw corrupt('zstd', 'the stream ends inside a frame');
  }
}


/** lz4 frames of independent blocks, without checksums: a frame header, blocks, an end mark. */
class Lz4Frames extends Accumulating {
  private readonly native = nativeLz4();
  /** Inside a frame: its largest block; 0 between frames. */
  private blockMax = 0;
  /** Bytes of a skippable frame still to pass over (counted, never held). */
  private skipping = 0;

  protected decode(data: Buffer, emit: Emit): number {
    let p = 0;
    for (;;) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, data.length - p);
        this.skipping -= n;
        p += n;
        if (this.skipping > 0) return p;
      }
      if (this.blockMax === 0) {
        if (data.length - p < 4) return p;
        const magic = data.readUInt32LE(p);
        if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) {
          if (data.length - p < 8) return p;
          this.skipping = data.readUInt32LE(p + 4);
          p += 8;
          continue;
        }
        if (data.length - p < 7) return p;
        if (magic !== FRAME_MAGIC) throw corrupt('lz4', `not an lz4 frame (magic number 0x${magic.toString(16)})`);
        const flags = data[p + 4]!;
        if (flags >> 6 !== 1) throw corrupt('lz4', 'unsupported lz4 frame version');
        // linked blocks, checksums, a dictionary, a content size: not what pgpitr writes
        if ((flags & 0x20) === 0 || flags & 0x1d) throw new UnsupportedInput('an lz4 frame with linked blocks, checksums or a content size');
        const max = BLOCK_MAX[(data[p + 5]! >> 4) & 7];
        if (max === undefined) throw corrupt('lz4', 'invalid block maximum size in frame descriptor');
        this.blockMax = max;
        p += 7;
      }
      if (data.length - p < 4) return p;
      const field = data.readUInt32LE(p);
      if (field === 0) {
        this.blockMax = 0;
        p += 4;
        continue;
      }
      const len = field & 0x7fffffff;
      if (len > this.blockMax) throw corrupt('lz4', `block of ${len} bytes exceeds the frame's maximum of ${this.blockMax}`);
      if (data.length - p - 4 < len) return p;
      const block = data.subarray(p + 4, p + 4 + len);
      if (field & 0x80000000) emit(block);
      else emit(this.decodeBlock(block));
      p += 4 + len;
    }
  }

  private decodeBlock(block: Buffer): Buffer {
    const out = this.outputOf(this.blockMax);
    if (this.native) {
      const n = this.native.decompressBlock(block, out);
      if (n < 0) throw corrupt('lz4', 'a block is damaged');
      return out.subarray(0, n);
    }
    return out.subarray(0, decodeLz4Block(block, 0, block.length, out, 0, out.length));
  }

  protected truncated(): never {
    throw corrupt('lz4', 'unexpected end of input: the last frame is truncated');
  }

  override end(): void {
    if (this.blockMax !== 0 || this.skipping > 0) this.truncated();
    super.end();
  }
}
