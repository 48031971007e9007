// lz4 streams. Compression: 256 KiB blocks, by the system's liblz4
// (lz4-native.ts: fast mode for levels 1-2, called synchronously, and
// high-compression mode for 3-12, several blocks at once on libuv's thread
// pool, as PostgreSQL's levels) or, where it cannot be loaded, by lz4-napi
// (lz4_flex on the thread pool, one fast mode whatever the level). Each block
// becomes one small lz4 frame of its own (header, one block, end mark), so the
// concatenation is one valid lz4 stream for `lz4 -d` and PostgreSQL. We build
// the frames here because lz4-napi's own frame encoder is half as fast as its
// block encoder. Blocks stay small because each thread-pool thread keeps what
// it allocated: 1 MiB blocks cost ~50 MB more peak RSS at no gain (measured).
// Decompression: our own frame parser (lz4 Frame format 1.6.x) over
// lz4-block.ts, because no package decodes an lz4 frame as it streams.

import type { Transform } from 'node:stream';
import { CodecTransform, CompressionError, corrupt } from './common.js';
import type { CodecStep, StepCodec } from './common.js';
import { ParallelBlockTransform } from './parallel.js';
import { decodeLz4Block } from './lz4-block.js';
import { Xxh32, xxh32 } from './xxh32.js';
import { nativeLz4 } from './lz4-native.js';
import type { NativeLz4 } from './lz4-native.js';

/** The input of one frame: what every frame's header allows at most. */
export const BLOCK = 256 * 1024;
export const FRAME_MAGIC = 0x184d2204;
export const SKIPPABLE_MASK = 0xfffffff0;
export const SKIPPABLE_MAGIC = 0x184d2a50;
const HISTORY = 64 * 1024;
export const BLOCK_MAX: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1 << 20, 7: 4 << 20 };

/** Frame header: version 1, independent blocks, no checksums, 256 KiB block maximum. */
export const FRAME_HEADER = (() => {
  const descriptor = Buffer.from([0x60, 0x50]);
  return Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18]), descriptor, Buffer.from([(xxh32(descriptor) >>> 8) & 0xff])]);
})();
export const END_MARK = Buffer.alloc(4);

/** A block stored as is, in a frame of its own (when compression would not make it smaller). */
function storedFrame(block: Buffer): Buffer[] {
  const size = Buffer.alloc(4);
  size.writeUInt32LE((block.length | 0x80000000) >>> 0);
  return [FRAME_HEADER, size, Buffer.from(block), END_MARK];
}

/**
 * lz4-napi: one block → one frame, without copying the compressed bytes: its
 * output starts with the uncompressed size (4 bytes), which we overwrite with
 * the frame's block size field.
 */
function napiFrame(block: Buffer, packed: Buffer): Buffer[] {
  if (packed.length - 4 >= block.length) return storedFrame(block);
  packed.writeUInt32LE(packed.length - 4, 0);
  return [FRAME_HEADER, packed, END_MARK];
}

/** liblz4's high-compression levels (on the thread pool): compresses after 4 bytes left for the block size field. */
async function nativeFrame(lib: NativeLz4, block: Buffer, level: number): Promise<Buffer[]> {
  const bound = lib.compressBound(block.length);
  const out = Buffer.allocUnsafeSlow(4 + bound);
  const n = await lib.compress(block, out.subarray(4), level);
  if (n <= 0 || n >= block.length) return storedFrame(block);
  out.writeUInt32LE(n, 0);
  return [FRAME_HEADER, out.subarray(0, 4 + n), END_MARK];
}

const SLAB = 1 << 20;
/** Bytes around a block's data in its frame: header, block size field, end mark. */
const FRAME_OVERHEAD = FRAME_HEADER.length + 4 + END_MARK.length;

/**
 * liblz4's fast levels, which compress synchronously: each whole frame (header,
 * block, end mark) is written straight into a shared 1 MiB slab, right after the
 * previous one, and handed on as a view of it. Compressed blocks are ~1/9 of their
 * input here, so a 1 GB backup allocates ~130 MB of slabs instead of ~950 MB of
 * worst-case-size buffers, one per block; allocation of external memory is what
 * drives the garbage collector during a backup (with the parser's copies gone too:
 * 83 scavenges and ~200 ms of GC pauses became 41 and 25 ms). A slab is never
 * written again once its bytes are handed on; it is freed when the last view of it
 * has been written out.
 */
function slabFrameEncoder(lib: NativeLz4, level: number): (block: Buffer) => Buffer {
  let slab = Buffer.allocUnsafeSlow(0);
  let used = 0;
  return (block) => {
    const need = FRAME_OVERHEAD + lib.compressBound(block.length);
    if (slab.length - used < need) {
      slab = Buffer.allocUnsafeSlow(Math.max(SLAB, need));
      used = 0;
    }
    const start = used;
    const data = start + FRAME_HEADER.length + 4;
    FRAME_HEADER.copy(slab, start);
    let n = lib.compress(block, slab.subarray(data, start + need - END_MARK.length), level) as number;
    if (n <= 0 || n >= block.length) {
      block.copy(slab, data); // stored as is: bound >= block.length, so it fits
      n = block.length;
      slab.writeUInt32LE((n | 0x80000000) >>> 0, data - 4);
    } else {
      slab.writeUInt32LE(n, data - 4);
    }
    END_MARK.copy(slab, data + n);
    used = data + n + END_MARK.length;
    return slab.subarray(start, used);
  };
}

type FrameEncoder = (block: Buffer) => Promise<Buffer[]>;

let napiCompress: ((block: Buffer) => Promise<Buffer>) | undefined;

function frameEncoder(level: number): FrameEncoder {
  const lib = nativeLz4();
  if (lib && lib.synchronous(level)) {
    const encode = slabFrameEncoder(lib, level);
    return (block) => Promise.resolve([encode(block)]);
  }
  if (lib) return (block) => nativeFrame(lib, block, level);
  return async (block) => {
    napiCompress ??= (await import('lz4-napi')).compress;
    return napiFrame(block, await napiCompress(block));
  };
}

/** Which lz4 library compresses here (for -v and bench reports). */
export function lz4Implementation(): string {
  const lib = nativeLz4();
  return lib ? `liblz4 ${lib.version}` : 'lz4-napi (lz4_flex)';
}

export function createLz4Compressor(level: number, workers = 1): Transform {
  const encode = frameEncoder(level);
  return new ParallelBlockTransform(
    (block) =>
      encode(block).then(
        (out) => ({ out }),
        (e: Error) => Promise.reject(new CompressionError('ERR_COMPRESSION_FAILED', 'lz4', e.message, e)),
      ),
    BLOCK,
    Math.max(2, workers * 2),
  );
}

type State = 'magic' | 'descriptor' | 'descriptor-rest' | 'block-size' | 'block' | 'block-checksum' | 'content-checksum' | 'skip-size' | 'skip';

class Lz4FrameDecoder implements StepCodec {
  private state: State = 'magic';
  private need = 4;
  private scratch = Buffer.allocUnsafe(0);
  private partial = 0;
  private frames = 0;
  private flags = 0;
  private blockMax = 0;
  private blockUncompressed = false;
  private history: Buffer = Buffer.alloc(0);
  private content: Xxh32 | null = null;
  private lastBlock: Buffer = Buffer.alloc(0);

  step(input: Buffer, offset: number): CodecStep {
    let read = 0;
    for (;;) {
      const available = input.length - offset - read;
      let unit: Buffer;
      if (this.partial === 0 && available >= this.need) {
        unit = input.subarray(offset + read, offset + read + this.need);
        read += this.need;
      } else {
        if (available === 0) return { read, out: null, pending: false };
        if (this.scratch.length < this.need) {
          const bigger = Buffer.allocUnsafe(Math.max(this.need, 1024));
          this.scratch.copy(bigger, 0, 0, this.partial);
          this.scratch = bigger;
        }
        const n = Math.min(available, this.need - this.partial);
        input.copy(this.scratch, this.partial, offset + read, offset + read + n);
        this.partial += n;
        read += n;
        if (this.partial < this.need) return { read, out: null, pending: false };
        unit = this.scratch.subarray(0, this.need);
        this.partial = 0;
      }
      const out = this.handle(unit);
      if (out !== null) return { read, out, pending: false };
    }
  }

  finishStep(): CodecStep {
    return { read: 0, out: null, pending: false };
  }

  checkComplete(): void {
    if (this.frames === 0) throw corrupt('lz4', 'empty input: no lz4 frame');
    if (this.state !== 'magic' || this.partial !== 0) throw corrupt('lz4', 'unexpected end of input: the last frame is truncated');
  }

  dispose(): void {}

  private expect(state: State, need: number): null {
    this.state = state;
    this.need = need;
    return null;
  }

  private handle(unit: Buffer): Buffer | null {
    switch (this.state) {
      case 'magic': {
        const magic = unit.readUInt32LE(0);
        if (magic === FRAME_MAGIC) return this.expect('descriptor', 2);
        if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) return this.expect('skip-size', 4);
        throw corrupt('lz4', `not an lz4 frame (magic number 0x${magic.toString(16)})`);
      }
      case 'descriptor': {
        this.flags = unit[0]!;
        if (this.flags >> 6 !== 1) throw corrupt('lz4', 'unsupported lz4 frame version');
        const max = BLOCK_MAX[(unit[1]! >> 4) & 7];
        if (max === undefined) throw corrupt('lz4', 'invalid block maximum size in frame descriptor');
        this.blockMax = max;
        const extra = (this.flags & 0x08 ? 8 : 0) + (this.flags & 0x01 ? 4 : 0) + 1; // content size, dictionary id, header checksum
        return this.expect('descriptor-rest', extra);
      }
      case 'descriptor-rest':
        if (this.flags & 0x01) throw corrupt('lz4', 'frames that need a dictionary are not supported');
        this.history = Buffer.alloc(0);
        this.content = this.flags & 0x04 ? new Xxh32() : null;
        return this.expect('block-size', 4);
      case 'block-size': {
        const v = unit.readUInt32LE(0);
        if (v === 0) {
          if (this.flags & 0x04) return this.expect('content-checksum', 4);
          this.frames++;
          return this.expect('magic', 4);
        }
        const len = v & 0x7fffffff;
        if (len > this.blockMax) throw corrupt('lz4', `block of ${len} bytes exceeds the frame's maximum of ${this.blockMax}`);
        this.blockUncompressed = (v & 0x80000000) !== 0;
        return this.expect('block', len);
      }
      case 'block': {
        if (this.flags & 0x10) this.lastBlock = Buffer.from(unit);
        const out = this.decodeBlock(unit);
        this.content?.update(out);
        if (this.flags & 0x10) this.expect('block-checksum', 4);
        else this.expect('block-size', 4);
        return out;
      }
      case 'block-checksum':
        if (unit.readUInt32LE(0) !== xxh32(this.lastBlock)) throw corrupt('lz4', 'block checksum mismatch');
        return this.expect('block-size', 4);
      case 'content-checksum':
        if (this.content && unit.readUInt32LE(0) !== this.content.digest()) throw corrupt('lz4', 'content checksum mismatch: the data is damaged');
        this.frames++;
        return this.expect('magic', 4);
      case 'skip-size':
        return this.expect('skip', unit.readUInt32LE(0));
      case 'skip':
        this.frames++;
        return this.expect('magic', 4);
    }
  }

  private decodeBlock(data: Buffer): Buffer {
    const linked = (this.flags & 0x20) === 0;
    let out: Buffer;
    if (this.blockUncompressed) {
      out = Buffer.from(data);
    } else {
      const hist = linked ? this.history : Buffer.alloc(0);
      const dst = Buffer.allocUnsafe(hist.length + this.blockMax);
      hist.copy(dst, 0);
      const end = decodeLz4Block(data, 0, data.length, dst, hist.length, dst.length);
      out = dst.subarray(hist.length, end);
    }
    if (linked) {
      const keep = Math.min(HISTORY, this.history.length + out.length);
      const next = Buffer.allocUnsafe(keep);
      const fromOut = Math.min(keep, out.length);
      const fromHist = keep - fromOut;
      this.history.copy(next, 0, this.history.length - fromHist);
      out.copy(next, fromHist, out.length - fromOut);
      this.history = next;
    }
    return out;
  }
}

export function createLz4Decompressor(): Transform {
  return new CodecTransform(new Lz4FrameDecoder(), 'lz4');
}
