// Bytes that compress somewhat, the same on every run: a third random, the rest runs of one byte per KiB.
export function sampleData(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = i % 3 === 0 ? x & 0xff : (i >> 10) & 0xff;
  }
  return b;
}
