// The system's libzstd (the library pg_basebackup, PostgreSQL and the zstd
// command link; every Debian/Ubuntu/RHEL base system has it) called through
// koffi (native-library.ts), as liblz4 is. One-shot frames, at the level asked for,
// on libuv's thread pool. @mongodb-js/zstd, the fallback where libzstd or koffi
// is missing, drops the level (its 1.x wrapper passes only the data: every
// frame comes out at level 3), so this is the path that honours -Z zstd:LEVEL.
// PGPITR_ZSTD=mongodb-js forces the fallback (tests use it to cover both).

import { bindNativeLibrary, callOnThreadPoolWith, versionText } from '../native-library.js';
import type { NativeLibrary } from '../native-library.js';
import { poolFor } from '../buffer-pool.js';

export interface NativeZstd {
  readonly version: string;
  /** One zstd frame of `src` at `level` (negative levels are zstd's fast modes), with its content size. */
  compress(src: Buffer, level: number): Promise<Buffer>;
  /** The content of one or more frames, when every frame records its size; null when one does not. */
  decompress(src: Buffer): Promise<Buffer | null>;
  /** The length of the complete frame at the start of src; null while src holds only part of one (or no frame). */
  frameLength(src: Buffer): number | null;
  /** The content size the frame at the start of src records; null when it records none (or src is no frame). */
  frameContentSize(src: Buffer): number | null;
  /** Decodes whole frames of src into dst, synchronously (worker threads); the bytes written. Throws on damage. */
  decompressInto(src: Buffer, dst: Buffer): number;
  /** As decompressInto, on libuv's thread pool. */
  decompressIntoOnPool(src: Buffer, dst: Buffer): Promise<number>;
  /** The largest frame compressInto may write for `size` bytes of input. */
  compressBound(size: number): number;
  /** One frame of src written into dst, synchronously (worker threads); the bytes written. */
  compressInto(src: Buffer, dst: Buffer, level: number): number;
}

const LIBRARY_NAMES = ['libzstd.so.1', 'libzstd.so', 'libzstd.1.dylib', 'libzstd.dylib'];

let loaded: NativeZstd | null | undefined;

export function nativeZstd(): NativeZstd | null {
  if (loaded !== undefined) return loaded;
  loaded = process.env['PGPITR_ZSTD'] === 'mongodb-js' ? null : bindNativeLibrary(LIBRARY_NAMES, bindZstd);
  return loaded;
}

function bindZstd(lib: NativeLibrary): NativeZstd {
  const versionNumber = lib.func('unsigned int ZSTD_versionNumber()');
  const bound = lib.func('size_t ZSTD_compressBound(size_t srcSize)');
  // With a context kept for the next call: ZSTD_compress / ZSTD_decompress allocate one per call
  // (over a megabyte at level 3), and fresh memory costs a page fault per 4 KiB, which on a virtual
  // machine can cost more than the compression itself. The synchronous calls of a thread share that
  // thread's context (this module is loaded once per thread); calls on the thread pool, which may
  // run at once, each take an idle one.
  const createCCtx = lib.func('void *ZSTD_createCCtx()');
  const createDCtx = lib.func('void *ZSTD_createDCtx()');
  const compress = lib.func('size_t ZSTD_compressCCtx(void *cctx, uint8_t *dst, size_t dstCapacity, const uint8_t *src, size_t srcSize, int level)');
  const decompress = lib.func('size_t ZSTD_decompressDCtx(void *dctx, uint8_t *dst, size_t dstCapacity, const uint8_t *src, size_t srcSize)');
  const contexts = (create: () => unknown) => {
    const idle: unknown[] = [];
    const make = (): unknown => {
      const c = create();
      if (c === null) throw new Error('zstd: out of memory for a context');
      return c;
    };
    return { take: (): unknown => idle.pop() ?? make(), give: (c: unknown): void => void idle.push(c) };
  };
  const cctxs = contexts(() => createCCtx());
  const dctxs = contexts(() => createDCtx());
  let syncCctx: unknown = null;
  let syncDctx: unknown = null;
  const isError = lib.func('unsigned int ZSTD_isError(size_t code)');
  const errorName = lib.func('const char *ZSTD_getErrorName(size_t code)');
  const frameContentSize = lib.func('unsigned long long ZSTD_getFrameContentSize(const uint8_t *src, size_t srcSize)');
  const frameSize = lib.func('size_t ZSTD_findFrameCompressedSize(const uint8_t *src, size_t srcSize)');
  const v = versionNumber() as number;
  const decompressOnPool = async (src: Buffer, dst: Buffer): Promise<number> =>
    check(await callOnThreadPoolWith<number | bigint, unknown>(decompress, dctxs, dst, dst.length, src, src.length), 'decompression');
  const check = (n: number | bigint, what: string): number => {
    if (isError(n)) throw new Error(`zstd ${what}: ${errorName(n) as string}`);
    return Number(n);
  };
  return {
    version: versionText(v),
    frameLength(src) {
      if (src.length === 0) return null;
      const n = frameSize(src, src.length) as number | bigint;
      return isError(n) ? null : Number(n);
    },
    frameContentSize(src) {
      const size = frameContentSize(src, src.length) as number | bigint;
      return typeof size === 'bigint' || !Number.isSafeInteger(size) ? null : size;
    },
    compressBound(size) {
      return Number(bound(size));
    },
    compressInto(src, dst, level) {
      syncCctx ??= cctxs.take();
      return check(compress(syncCctx, dst, dst.length, src, src.length, level) as number | bigint, 'compression');
    },
    decompressInto(src, dst) {
      syncDctx ??= dctxs.take();
      return check(decompress(syncDctx, dst, dst.length, src, src.length) as number | bigint, 'decompression');
    },
    decompressIntoOnPool: decompressOnPool,
    async compress(src, level) {
      const pool = poolFor(Number(bound(src.length)));
      const dst = pool.take();
      let n: number;
      try {
        n = check(await callOnThreadPoolWith<number | bigint, unknown>(compress, cctxs, dst, dst.length, src, src.length, level), 'compression');
      } catch (e) {
        pool.give(dst);
        throw e;
      }
      if (n > dst.length / 2) return dst.subarray(0, n); // little gained by copying: the output keeps this buffer
      const out = Buffer.from(dst.subarray(0, n));
      pool.give(dst);
      return out;
    },
    async decompress(src) {
      if (src.length === 0) throw new Error('zstd decompression: empty input, no zstd frame');
      // Sum the frames' recorded sizes; give up (null) if any frame does not record it.
      let total = 0;
      for (let off = 0; off < src.length; ) {
        const rest = src.subarray(off);
        const size = frameContentSize(rest, rest.length) as number | bigint;
        // ZSTD_CONTENTSIZE_UNKNOWN (2^64-1) and _ERROR (2^64-2) come back as bigints
        if (typeof size === 'bigint' || !Number.isSafeInteger(size)) {
          if (typeof size === 'bigint' && size >= 0xfffffffffffffffen) return null;
          throw new Error('zstd decompression: a frame is larger than this process can hold');
        }
        total += size;
        off += check(frameSize(rest, rest.length) as number | bigint, 'decompression');
      }
      const dst = Buffer.allocUnsafe(total);
      const n = await decompressOnPool(src, dst);
      if (n !== total) throw new Error(`zstd decompression: ${n} bytes decoded, the frames record ${total}`);
      return dst;
    },
  };
}
