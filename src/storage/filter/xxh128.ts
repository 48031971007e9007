// XXH3-128, the digest a backup set records of each file's original content
// (repo/backup-set/content-digest.ts says why it replaced SHA-256 there). In
// order of preference:
//   - the system's libxxhash (Debian's libxxhash0), through koffi: ~6.6 GB/s on
//     1 MiB here, against ~1.0 GB/s for SHA-256 with the CPU's SHA extensions;
//   - hash-wasm's WebAssembly build, ~2.2 GB/s, when the library is not there:
//     imported only then (its compilation costs ~15 ms).
// PGPITR_XXH128=wasm rules out the library (the unit tests run both on the same
// vectors). Both give the canonical form: 16 bytes, most significant first.

import { bindNativeLibrary } from '../native-library.js';
import type { NativeFn } from '../native-library.js';

/** A digest in progress. */
export interface ContentHash {
  update(bytes: Uint8Array): void;
  /** 32 hex digits; the hash cannot be updated after. */
  digestHex(): string;
}

export type Xxh128Implementation = 'libxxhash' | 'wasm';

/** Known answers (seed 0): a build that loads but computes something else must not decide what a backup records. */
export const XXH128_VECTORS: readonly [Uint8Array, string][] = [
  [new Uint8Array(0), '99aa06d3014798d86001c324468d497f'],
  [new TextEncoder().encode('pgpitr'), 'f4b6b1b2ea58e526a1c5331658924f29'],
  [Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255), 'abee229cdadad76d10ad30264426c830'],
  // Past XXH3's 1 KiB blocks (the path every WAL segment and file takes); libxxhash 0.8.1 and hash-wasm agree.
  [Uint8Array.from({ length: 70000 }, (_, i) => (i * 31 + 7) & 255), '9544c48b6b3678a8ff6e8ad95018ccd9'],
];

interface Native {
  create: NativeFn;
  free: NativeFn;
  reset: NativeFn;
  update: NativeFn;
  digest: NativeFn;
  canonical: NativeFn;
}

function loadNative(): Native | null {
  return bindNativeLibrary(
    ['libxxhash.so.0', 'libxxhash.so'],
    (lib) => ({
      create: lib.func('void *XXH3_createState()'),
      free: lib.func('int XXH3_freeState(void *state)'),
      reset: lib.func('int XXH3_128bits_reset(void *state)'),
      update: lib.func('int XXH3_128bits_update(void *state, const uint8_t *input, size_t length)'),
      digest: lib.func('XXH128_hash_t XXH3_128bits_digest(void *state)'),
      canonical: lib.func('void XXH128_canonicalFromHash(_Out_ uint8_t *dst, XXH128_hash_t hash)'),
    }),
    (types) => types.struct('XXH128_hash_t', { low64: 'uint64_t', high64: 'uint64_t' }),
  );
}

/** Native states of hashes dropped before their digest (a copy that failed) are freed once collected. */
const unfinished = new FinalizationRegistry<() => void>((free) => free());

/**
 * A native state and what frees it (once). Made apart from the hash that uses it: the function
 * the registry holds must not reach the hash's token, or the token would never be collected.
 */
function nativeState(n: Native): { state: object; live: () => boolean; free: () => void } {
  const state = n.create() as object | null;
  if (state === null) throw new Error('XXH3_createState: out of memory');
  let live = true;
  return {
    state,
    live: () => live,
    free: () => {
      if (live) n.free(state);
      live = false;
    },
  };
}

function nativeHash(n: Native): ContentHash {
  const s = nativeState(n);
  const token = {};
  unfinished.register(token, s.free, token);
  n.reset(s.state);
  return {
    update(bytes) {
      if (!s.live()) throw new Error('XXH3-128 updated after its digest');
      if (bytes.length > 0) n.update(s.state, bytes, bytes.length);
    },
    digestHex() {
      if (!s.live()) throw new Error('XXH3-128 digest taken twice');
      const out = Buffer.alloc(16);
      n.canonical(out, n.digest(s.state));
      unfinished.unregister(token);
      s.free();
      return out.toString('hex');
    },
  };
}

/** hash-wasm's hasher (the part used here). */
interface WasmHasher {
  init(): unknown;
  update(data: Uint8Array): unknown;
  digest(outputType: 'hex'): string;
  save(): Uint8Array;
  load(state: Uint8Array): unknown;
}

/**
 * One WebAssembly instance serves every hash of the thread: a hash whose turn it is
 * not loads its saved state first (hashes of a thread interleave only in restore's
 * main thread, for a few small files).
 */
function wasmHashes(h: WasmHasher): () => ContentHash {
  let owner: object | null = null;
  return () => {
    const me = {};
    h.init();
    let state: Uint8Array | null = h.save();
    owner = me;
    const take = () => {
      if (state === null) throw new Error('XXH3-128 used after its digest');
      if (owner !== me) {
        h.load(state);
        owner = me;
      }
    };
    return {
      update(bytes) {
        take();
        h.update(bytes);
        state = h.save();
      },
      digestHex() {
        take();
        state = null;
        owner = null;
        return h.digest('hex');
      },
    };
  };
}

function agrees(create: () => ContentHash): boolean {
  try {
    return XXH128_VECTORS.every(([input, hex]) => {
      const h = create();
      h.update(input);
      return h.digestHex() === hex;
    });
  } catch {
    return false;
  }
}

async function load(): Promise<{ create: () => ContentHash; name: Xxh128Implementation }> {
  const native = process.env.PGPITR_XXH128 === 'wasm' ? null : loadNative();
  if (native) {
    const create = () => nativeHash(native);
    if (agrees(create)) return { create, name: 'libxxhash' };
  }
  const { createXXHash128 } = await import('hash-wasm');
  const create = wasmHashes((await createXXHash128()) as unknown as WasmHasher);
  if (!agrees(create)) throw new Error('hash-wasm computes XXH3-128 wrongly in this runtime');
  return { create, name: 'wasm' };
}

const loaded = await load();

/** Which implementation this thread uses. */
export const xxh128Implementation: Xxh128Implementation = loaded.name;

/** A new XXH3-128 in progress. */
export const createXxh128: () => ContentHash = loaded.create;

/** The XXH3-128 of `bytes`, as 32 hex digits. */
export function xxh128Hex(bytes: Uint8Array): string {
  const h = createXxh128();
  h.update(bytes);
  return h.digestHex();
}
