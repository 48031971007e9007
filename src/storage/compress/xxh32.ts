// xxHash32 (the checksum of lz4 frames: block and content checksums, seed 0),
// incremental, after the public specification (xxhash doc/xxhash_spec.md).

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const round = (acc: number, lane: number) => Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);

export class Xxh32 {
  private v1 = (P1 + P2) | 0;
  private v2 = P2;
  private v3 = 0;
  private v4 = -P1 | 0;
  private readonly tail = new Uint8Array(16);
  private tailLen = 0;
  private total = 0;

  update(data: Uint8Array): void {
    this.total += data.length;
    let i = 0;
    if (this.tailLen > 0) {
      while (this.tailLen < 16 && i < data.length) this.tail[this.tailLen++] = data[i++]!;
      if (this.tailLen < 16) return;
      this.stripe(this.tail, 0);
      this.tailLen = 0;
    }
    const end = data.length - 16;
    for (; i <= end; i += 16) this.stripe(data, i);
    while (i < data.length) this.tail[this.tailLen++] = data[i++]!;
  }

  digest(): number {
    let h = this.total >= 16 ? (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0 : (this.v3 + P5) | 0;
    h = (h + this.total) | 0;
    let i = 0;
    const t = this.tail;
    for (; i + 4 <= this.tailLen; i += 4) {
      const lane = t[i]! | (t[i + 1]! << 8) | (t[i + 2]! << 16) | (t[i + 3]! << 24);
      h = Math.imul(rotl((h + Math.imul(lane, P3)) | 0, 17), P4);
    }
    for (; i < this.tailLen; i++) h = Math.imul(rotl((h + Math.imul(t[i]!, P5)) | 0, 11), P1);
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }

  private stripe(d: Uint8Array, i: number): void {
    this.v1 = round(this.v1, d[i]! | (d[i + 1]! << 8) | (d[i + 2]! << 16) | (d[i + 3]! << 24));
    this.v2 = round(this.v2, d[i + 4]! | (d[i + 5]! << 8) | (d[i + 6]! << 16) | (d[i + 7]! << 24));
    this.v3 = round(this.v3, d[i + 8]! | (d[i + 9]! << 8) | (d[i + 10]! << 16) | (d[i + 11]! << 24));
    this.v4 = round(this.v4, d[i + 12]! | (d[i + 13]! << 8) | (d[i + 14]! << 16) | (d[i + 15]! << 24));
  }
}

export function xxh32(data: Uint8Array): number {
  const h = new Xxh32();
  h.update(data);
  return h.digest();
}
