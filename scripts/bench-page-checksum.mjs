// Pages per second of pageChecksum on this machine (not part of the test suite).
// Build first (npx tsc -p tsconfig.json), then: node scripts/bench-page-checksum.mjs [MB]
import { pageChecksum, verifyPage, PAGE_SIZE } from '../dist/src/postgres/page-checksum.js';

const mb = Number(process.argv[2] ?? 64);
const buf = new Uint8Array(mb * 1024 * 1024);
let x = 12345;
for (let i = 0; i < buf.length; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; buf[i] = x >>> 24; }
const pages = buf.length / PAGE_SIZE;
for (let i = 0; i < pages; i++) { buf[i * PAGE_SIZE + 14] = 0x00; buf[i * PAGE_SIZE + 15] = 0x1f; buf[i * PAGE_SIZE] = 0; buf[i * PAGE_SIZE + 1] = 0; buf[i * PAGE_SIZE + 2] = 0; buf[i * PAGE_SIZE + 3] = 0; }

function run(label, fn) {
  for (let w = 0; w < 2; w++) fn(); // warm up
  const rounds = 3;
  const t0 = process.hrtime.bigint();
  let acc = 0;
  for (let r = 0; r < rounds; r++) acc ^= fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const n = pages * rounds;
  console.log(`${label}: ${Math.round(n / s)} pages/s (${((n * PAGE_SIZE) / s / 1e6).toFixed(0)} MB/s) [${acc}]`);
}
run('pageChecksum, aligned', () => { let a = 0; for (let i = 0; i < pages; i++) a ^= pageChecksum(buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), i); return a; });
run('verifyPage, aligned', () => { let a = 0; for (let i = 0; i < pages; i++) { const v = verifyPage(buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), i, 0xffffffffffn); a ^= typeof v === 'object' ? v.calculated : 0; } return a; });
const odd = new Uint8Array(buf.length + 1); odd.set(buf, 1);
run('pageChecksum, unaligned (copied)', () => { let a = 0; for (let i = 0; i < pages; i++) a ^= pageChecksum(odd.subarray(1 + i * PAGE_SIZE, 1 + (i + 1) * PAGE_SIZE), i); return a; });
const { pageChecksumScalar } = await import('../dist/src/postgres/page-checksum.js');
const { pageArena } = await import('../dist/src/postgres/page-checksum-simd.js');
run('pageChecksumScalar, aligned', () => { let a = 0; for (let i = 0; i < pages; i++) a ^= pageChecksumScalar(buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), i); return a; });
const arena = pageArena(1024 * 1024);
if (arena) {
  const per = arena.length / PAGE_SIZE;
  run('pageChecksum, in an arena (1 MiB refilled)', () => { let a = 0; for (let i = 0; i < pages; i++) { const k = i % per; if (k === 0) arena.set(buf.subarray(i * PAGE_SIZE, (i + per) * PAGE_SIZE)); a ^= pageChecksum(arena.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE), i); } return a; });
}
