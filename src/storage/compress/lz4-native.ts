// The system's liblz4 (the library pg_basebackup and the lz4 command link),
// called through koffi (native-library.ts). liblz4 compresses pgbench data ~2.4x faster than lz4_flex (lz4-napi):
// 3.5 GB/s against 1.4 GB/s per thread, measured here. Where the library or
// koffi cannot be loaded, lz4.ts falls back to lz4-napi.
// PGPITR_LZ4=lz4-napi forces the fallback (tests use it to cover both).

import { bindNativeLibrary, callOnThreadPool, versionText } from '../native-library.js';
import type { NativeLibrary } from '../native-library.js';

/**
 * Compresses `src` into `dst` as one raw lz4 block; gives the compressed size (0 = did not fit).
 * Fast levels (1-2) run synchronously: liblz4 does a 256 KiB block in ~80 µs, less
 * than handing it to another thread costs (koffi's async path measured no cheaper
 * on the main thread, plus the hand-off). High-compression levels, 20-50 times
 * slower, run on libuv's thread pool so that several blocks proceed at once.
 */
export type NativeBlockCompress = (src: Buffer, dst: Buffer, level: number) => number | Promise<number>;

export interface NativeLz4 {
  readonly version: string;
  compressBound(size: number): number;
  /** True when compress() returns the size itself at this level, not a promise. */
  synchronous(level: number): boolean;
  compress: NativeBlockCompress;
  /** Decodes one independent raw block into dst, synchronously; the bytes written, or a negative number on damage. */
  decompressBlock(src: Buffer, dst: Buffer): number;
}

const LIBRARY_NAMES = ['liblz4.so.1', 'liblz4.so', 'liblz4.1.dylib', 'liblz4.dylib'];
/** lz4 levels below 3 are its fast mode, 3 and above its high-compression mode (lz4frame.h). */
const HC_MIN_LEVEL = 3;

let loaded: NativeLz4 | null | undefined;

export function nativeLz4(): NativeLz4 | null {
  if (loaded !== undefined) return loaded;
  loaded = process.env['PGPITR_LZ4'] === 'lz4-napi' ? null : bindNativeLibrary(LIBRARY_NAMES, bindLz4);
  return loaded;
}

function bindLz4(lib: NativeLibrary): NativeLz4 {
  const versionNumber = lib.func('int LZ4_versionNumber()');
  const bound = lib.func('int LZ4_compressBound(int inputSize)');
  const fast = lib.func('int LZ4_compress_default(const uint8_t *src, uint8_t *dst, int srcSize, int dstCapacity)');
  const safe = lib.func('int LZ4_decompress_safe(const uint8_t *src, uint8_t *dst, int compressedSize, int dstCapacity)');
  const hc = lib.func('int LZ4_compress_HC(const uint8_t *src, uint8_t *dst, int srcSize, int dstCapacity, int level)');
  // Every block but a stream's last has the same size: ask once per size, not per block.
  let boundFor = -1;
  let boundSize = 0;
  return {
    version: versionText(versionNumber() as number),
    compressBound: (size) => {
      if (size !== boundFor) {
        boundSize = bound(size) as number;
        boundFor = size;
      }
      return boundSize;
    },
    synchronous: (level) => level < HC_MIN_LEVEL,
    decompressBlock: (src, dst) => safe(src, dst, src.length, dst.length) as number,
    compress: (src, dst, level) => {
      if (level < HC_MIN_LEVEL) return fast(src, dst, src.length, dst.length) as number;
      return callOnThreadPool<number>(hc, src, dst, src.length, dst.length, level);
    },
  };
}
