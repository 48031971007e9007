// The system's native libraries (liblz4, libzstd: the ones pg_basebackup and
// the command-line tools link; Intel's ISA-L for CRC-32C; libxxhash for XXH3-128) called through koffi, a maintained FFI with
// prebuilt binaries and no build step. Used by lz4-native.ts, zstd-native.ts, write-behind.ts, crc32c.ts and xxh128.ts.

import { createRequire } from 'node:module';
import { Slots } from '../common/slots.js';

/** A C function bound by koffi: call it, or call it on libuv's thread pool with .async(..., callback). */
export interface NativeFn {
  async(...args: unknown[]): void;
  (...args: unknown[]): unknown;
}

export interface NativeLibrary {
  func(signature: string): NativeFn;
}

/** What a binding may declare before its functions: the C structs they pass by value. */
export interface NativeTypes {
  struct(name: string, fields: Record<string, string>): unknown;
}

/**
 * Binds the first of `names` that loads (`bind` declares its functions and may throw
 * when one is missing), or null when koffi or the library is not there: the caller
 * then falls back to its npm implementation. `declare` names the types the functions
 * use, once per thread (koffi refuses a name declared twice).
 */
export function bindNativeLibrary<T>(names: string[], bind: (lib: NativeLibrary) => T, declare?: (types: NativeTypes) => void): T | null {
  let koffi: NativeTypes & { load(name: string): NativeLibrary };
  try {
    koffi = createRequire(import.meta.url)('koffi') as typeof koffi;
  } catch {
    return null;
  }
  try {
    declare?.(koffi);
  } catch {
    return null;
  }
  for (const name of names) {
    try {
      return bind(koffi.load(name));
    } catch {
      // try the next name
    }
  }
  return null;
}

/**
 * Calls handed to koffi at once. koffi queues at most 256 asynchronous calls and throws past that
 * ("Too many asynchronous calls are running"); a backup's small files, compressed as the reader
 * threads deliver them, went past it when the thread pool was busy. The rest wait here, in order:
 * libuv's pool runs 4 at a time anyway.
 */
const HANDED_AT_ONCE = 64;
const handed = new Slots(HANDED_AT_ONCE);

/** Calls `fn` on the thread pool (waiting in order for a turn past HANDED_AT_ONCE calls). */
export function callOnThreadPool<R>(fn: NativeFn, ...args: unknown[]): Promise<R> {
  return callOnThreadPoolWith<R, null>(fn, { take: () => null, give: () => {} }, ...args);
}

/**
 * As callOnThreadPool, with a resource taken from `pool` once the call has its turn (not while it
 * waits) and passed as the first argument, given back when the call is over: a library context,
 * so that no more exist than calls running.
 */
export async function callOnThreadPoolWith<R, C>(fn: NativeFn, pool: { take(): C; give(c: C): void }, ...args: unknown[]): Promise<R> {
  await handed.acquire();
  const resource = pool.take();
  try {
    const all = resource === null ? args : [resource, ...args];
    return await new Promise<R>((resolve, reject) => fn.async(...all, (e: Error | null, r: R) => (e ? reject(e) : resolve(r))));
  } finally {
    pool.give(resource);
    handed.release();
  }
}

/** "1.9.4" from a library's MAJOR*10000 + MINOR*100 + PATCH version number. */
export function versionText(v: number): string {
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}
