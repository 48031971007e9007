// CRC-32C (Castagnoli), the default checksum of backup_manifest files. It runs
// over every byte a backup reads and every byte a restore writes, on worker
// threads, so its speed shows in both. In order of preference:
//   - Intel ISA-L's crc32_iscsi (Debian's libisal2), through koffi: folding with
//     carry-less multiplies, ~30 GB/s on 1 MiB here (~10 GB/s on 8 KiB pages);
//   - @node-rs/crc32 (the SSE4.2 / ARMv8 CRC instruction, one stream at a time):
//     ~3.3 GB/s here; it cost ~10% of a parallel backup's CPU;
//   - the slicing-by-8 code below, ~1.1 GB/s, when neither loads.
// PGPITR_CRC32C=node-rs or =js rules out what comes before it (tests cover each).
//
// All take and return the finished CRC of the bytes so far (0 for none), so a
// running value can be carried from chunk to chunk.

import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { bindNativeLibrary } from '../native-library.js';

type Crc32cFn = (chunk: Uint8Array, crc: number) => number;

// Table k maps a byte to its CRC contribution k bytes further on (slicing-by-8).
const TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) {
      const prev = t[(k - 1) * 256 + i]!;
      t[k * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
})();

// Reading 4 bytes at once as an Int32Array element gives them in CRC order only on little-endian hosts.
const WORDS_OK = endianness() === 'LE';

/** The pure JavaScript CRC-32C: `crc` is the result for the preceding bytes. */
export function crc32cJs(chunk: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc;
  let i = 0;
  const n = chunk.length;
  if (WORDS_OK) {
    // Bytes up to a 4-byte boundary one at a time, then 8 at a time through an aligned view.
    while (i < n && ((chunk.byteOffset + i) & 3) !== 0) c = t[(c ^ chunk[i++]!) & 0xff]! ^ (c >>> 8);
    const pairs = (n - i) >>> 3;
    if (pairs > 0) {
      const w = new Int32Array(chunk.buffer, chunk.byteOffset + i, pairs * 2);
      for (let k = 0; k < w.length; k += 2) {
        const a = c ^ w[k]!;
        const b = w[k + 1]!;
        c =
          t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
          t[768 + (b & 0xff)]! ^ t[512 + ((b >>> 8) & 0xff)]! ^ t[256 + ((b >>> 16) & 0xff)]! ^ t[b >>> 24]!;
      }
      i += pairs * 8;
    }
  }
  for (; i < n; i++) c = t[(c ^ chunk[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const CHECK_INPUT = '123456789';
const CHECK_VALUE = 0xe3069283;

/** A build that loads but computes something else must not decide a backup's checksums. */
function checked(fn: Crc32cFn): Crc32cFn | null {
  try {
    return fn(new TextEncoder().encode(CHECK_INPUT), 0) === CHECK_VALUE ? fn : null;
  } catch {
    return null;
  }
}

/** The largest length handed to crc32_iscsi at once: its length is a C int. */
const ISAL_MAX = 1 << 30;

function loadIsal(): Crc32cFn | null {
  const iscsi = bindNativeLibrary(['libisal.so.2', 'libisal.so'], (lib) => lib.func('uint32_t crc32_iscsi(const uint8_t *buf, int len, uint32_t init)'));
  if (iscsi === null) return null;
  // crc32_iscsi takes and gives the register, not the finished CRC: inverted on the way in and out.
  return checked((chunk, crc) => {
    let c = ~crc >>> 0;
    if (chunk.length <= ISAL_MAX) c = iscsi(chunk, chunk.length, c) as number;
    else for (let at = 0; at < chunk.length; at += ISAL_MAX) c = iscsi(chunk.subarray(at, at + ISAL_MAX), Math.min(ISAL_MAX, chunk.length - at), c) as number;
    return ~c >>> 0;
  });
}

function loadNodeRs(): Crc32cFn | null {
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: (input: Uint8Array, initial?: number) => number };
    const fn = mod.crc32c;
    if (typeof fn !== 'function') return null;
    return checked((chunk, crc) => fn(chunk, crc));
  } catch {
    return null;
  }
}

export type Crc32cImplementation = 'isal' | 'node-rs' | 'js';

function load(): { fn: Crc32cFn | null; name: Crc32cImplementation } {
  const rule = process.env.PGPITR_CRC32C;
  if (rule !== 'js') {
    const isal = rule === 'node-rs' ? null : loadIsal();
    if (isal) return { fn: isal, name: 'isal' };
    const nodeRs = loadNodeRs();
    if (nodeRs) return { fn: nodeRs, name: 'node-rs' };
  }
  return { fn: null, name: 'js' };
}

const loaded = load();
const native = loaded.fn;

/** Which implementation crc32c() uses in this thread. */
export const crc32cImplementation: Crc32cImplementation = loaded.name;

/** CRC-32C of `chunk` continuing from `crc`, the result for the preceding bytes (0 at the start). */
export const crc32c: (chunk: Uint8Array, crc?: number) => number =
  native === null ? crc32cJs : (chunk, crc = 0) => native(chunk, crc);

/** A finished CRC as a repository records it: 8 hex digits, most significant first, whatever the host (unlike backup_manifest's, crc32cHex). */
export function crc32cText(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}
