// pg_checksum_block (checksum_impl.h) as a WebAssembly SIMD function: the
// algorithm's 32 independent lanes are eight i32x4 vectors, so one instruction
// does the work of four. The scalar code in page-checksum.ts stays the
// reference and the fallback (no WebAssembly SIMD in this runtime).
//
// The module is small enough to be assembled here, byte by byte, at first use;
// nothing is compiled at install time. Its memory holds a scratch page (for
// pages that live elsewhere) and arenas: buffers a reader thread reads its
// files into (pageArena), whose pages are then checked where they are. The
// memory never grows, so views of it stay valid for the thread's life.

const PAGE = 8192;
/** The scratch page for pages outside the module's memory. */
const SCRATCH = 0;
/** Arenas are carved after the scratch page, up to the memory's end (64 KiB pages). */
const MEMORY_PAGES = 34; // 2 MiB of arenas + the scratch page's 64 KiB
const ARENA_START = 65536;

// The lanes' starting values (checksumBaseOffsets), as in page-checksum.ts.
const BASE_OFFSETS = [
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
];
const FNV_PRIME = 16777619;

// --- encoding ---------------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function u32x4(a: number, b: number, c: number, d: number): number[] {
  const bytes = new Uint8Array(new Uint32Array([a, b, c, d]).buffer);
  return [...bytes];
}

const SIMD = 0xfd;
const op = {
  localGet: (i: number) => [0x20, ...uleb(i)],
  localSet: (i: number) => [0x21, ...uleb(i)],
  localTee: (i: number) => [0x22, ...uleb(i)],
  i32Const: (n: number) => [0x41, ...sleb(n)],
  i32Add: [0x6a],
  i32GeU: [0x4f],
  i32Xor: [0x73],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  br: (l: number) => [0x0c, ...uleb(l)],
  brIf: (l: number) => [0x0d, ...uleb(l)],
  end: [0x0b],
  v128Load: (offset: number) => [SIMD, ...uleb(0x00), 0 /* align hint: 1 byte */, ...uleb(offset)],
  v128Const: (bytes: number[]) => [SIMD, ...uleb(0x0c), ...bytes],
  v128And: [SIMD, ...uleb(0x4e)],
  v128Xor: [SIMD, ...uleb(0x51)],
  i32x4ExtractLane: (lane: number) => [SIMD, ...uleb(0x1b), lane],
  i32x4ShrU: [SIMD, ...uleb(0xad)],
  i32x4Mul: [SIMD, ...uleb(0xb5)],
};

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...uleb(b.length), ...b];
}

/**
 * sum(p): pg_checksum_block of the page at p, before the block number is mixed
 * in: the 32 lanes' xor, with pd_checksum (the low half of word 2) taken as zero.
 */
function sumFunction(): number[] {
  // Locals: 0 = p (param), 1..8 = the lane vectors, 9 = t, 10 = end.
  const P = 0;
  const S = (k: number) => 1 + k;
  const T = 9;
  const END = 10;
  const prime = u32x4(FNV_PRIME, FNV_PRIME, FNV_PRIME, FNV_PRIME);
  // CHECKSUM_COMP on lane vector k, with the value already xored into t.
  const mix = (k: number) => [
    ...op.localGet(T), ...op.v128Const(prime), ...op.i32x4Mul,
    ...op.localGet(T), ...op.i32Const(17), ...op.i32x4ShrU,
    ...op.v128Xor, ...op.localSet(S(k)),
  ];
  // One row (128 bytes at p): every lane vector takes its four words.
  const row = (first: boolean) => {
    const code: number[] = [];
    for (let k = 0; k < 8; k++) {
      code.push(...op.localGet(S(k)), ...op.localGet(P), ...op.v128Load(16 * k));
      // The first row's word 2 holds pd_checksum in its low half: counted as zero.
      if (first && k === 0) code.push(...op.v128Const(u32x4(0xffffffff, 0xffffffff, 0xffff0000, 0xffffffff)), ...op.v128And);
      code.push(...op.v128Xor, ...op.localSet(T), ...mix(k));
    }
    return code;
  };
  const body: number[] = [];
  for (let k = 0; k < 8; k++) {
    body.push(...op.v128Const(u32x4(BASE_OFFSETS[4 * k]!, BASE_OFFSETS[4 * k + 1]!, BASE_OFFSETS[4 * k + 2]!, BASE_OFFSETS[4 * k + 3]!)), ...op.localSet(S(k)));
  }
  body.push(...op.localGet(P), ...op.i32Const(PAGE), ...op.i32Add, ...op.localSet(END));
  body.push(...row(true));
  // Rows 1..63.
  body.push(...op.block, ...op.loop);
  body.push(...op.localGet(P), ...op.i32Const(128), ...op.i32Add, ...op.localTee(P), ...op.localGet(END), ...op.i32GeU, ...op.brIf(1));
  body.push(...row(false), ...op.br(0), ...op.end, ...op.end);
  // Two rounds of zeros (t = s ^ 0), then every lane folded by xor.
  for (let r = 0; r < 2; r++) for (let k = 0; k < 8; k++) body.push(...op.localGet(S(k)), ...op.localSet(T), ...mix(k));
  body.push(...op.localGet(S(0)));
  for (let k = 1; k < 8; k++) body.push(...op.localGet(S(k)), ...op.v128Xor);
  body.push(...op.localSet(T));
  body.push(...op.localGet(T), ...op.i32x4ExtractLane(0));
  for (let lane = 1; lane < 4; lane++) body.push(...op.localGet(T), ...op.i32x4ExtractLane(lane), ...op.i32Xor);
  body.push(...op.end);
  const locals = vec([
    [...uleb(9), 0x7b], // 9 v128
    [...uleb(1), 0x7f], // 1 i32
  ]);
  const code = [...locals, ...body];
  return [...uleb(code.length), ...code];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[0x7f]]), ...vec([[0x7f]])]])), // (i32) -> i32
    ...section(3, vec([uleb(0)])),
    ...section(5, vec([[0x00, ...uleb(MEMORY_PAGES)]])),
    ...section(7, vec([
      [...name('memory'), 0x02, ...uleb(0)],
      [...name('sum'), 0x00, ...uleb(0)],
    ])),
    ...section(10, vec([sumFunction()])),
  ];
  return new Uint8Array(bytes);
}

// --- use ----------------------------------------------------------------------

interface Simd {
  memory: Uint8Array;
  sum: (p: number) => number;
  next: number;
}

let simd: Simd | null | undefined;

function instance(): Simd | null {
  if (simd !== undefined) return simd;
  try {
    const mod = new WebAssembly.Module(moduleBytes());
    const inst = new WebAssembly.Instance(mod, {});
    const memory = inst.exports['memory'] as WebAssembly.Memory;
    simd = { memory: new Uint8Array(memory.buffer), sum: inst.exports['sum'] as (p: number) => number, next: ARENA_START };
  } catch {
    simd = null; // no WebAssembly SIMD here: the scalar code serves
  }
  return simd;
}

/** Whether the SIMD checksum is available in this runtime. */
export function simdAvailable(): boolean {
  return instance() !== null;
}

/**
 * The block sum of an 8 kB page (pg_checksum_block with pd_checksum as zero),
 * or null without SIMD. A page inside an arena is read where it is; any other
 * is copied to the scratch page first.
 */
export function simdBlockSum(page: Uint8Array): number | null {
  const s = instance();
  if (s === null) return null;
  if (page.buffer === s.memory.buffer) return s.sum(page.byteOffset) >>> 0;
  s.memory.set(page, SCRATCH);
  return s.sum(SCRATCH) >>> 0;
}

/**
 * A buffer in the checksum's own memory, for a thread to read pages into: they
 * are then checked where they are, with no copy. Null when SIMD is missing or
 * the arenas (2 MiB per thread) are used up: the caller allocates as usual.
 * Never transfer it to another thread (it is not an ArrayBuffer of its own).
 */
export function pageArena(bytes: number): Buffer | null {
  const s = instance();
  if (s === null) return null;
  const at = (s.next + 15) & ~15;
  if (at + bytes > s.memory.length) return null;
  s.next = at + bytes;
  return Buffer.from(s.memory.buffer, at, bytes);
}
