// The CRC-32C of two pieces joined, from the CRC of each and the second's
// length: what lets a file copied as ranges by several workers still get one
// backup_manifest checksum. The math of zlib's crc32_combine (multiplying
// polynomials modulo the CRC polynomial, in the reflected bit order), for the
// Castagnoli polynomial.

const POLY = 0x82f63b78;

/** a × b modulo the polynomial (both reflected: bit 31 is x^0). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0..31. */
const X2N: number[] = (() => {
  const t = [0x40000000]; // x^1
  for (let k = 1; k < 32; k++) t.push(multModP(t[k - 1]!, t[k - 1]!));
  return t;
})();

/** x^(8n) modulo the polynomial: the shift that n zero bytes apply to a CRC. */
function shiftForBytes(n: number): number {
  let p = 0x80000000; // x^0
  let k = 3;
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** crc32c(A ‖ B) from crc32c(A), crc32c(B) and B's length in bytes. */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(shiftForBytes(lengthB), crcA) ^ crcB) >>> 0;
}
