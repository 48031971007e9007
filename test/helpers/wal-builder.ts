// WAL laid out byte for byte as PostgreSQL writes it (page headers, rem_len,
// 8-byte alignment, records with their CRC), for unit tests of what reads WAL
// records: small segments of 4 pages of 8 KiB.

import { strict as assert } from 'node:assert';
import { crc32cJs } from '../../src/storage/filter/crc32c.js';

export const BLCK = 8192;
export const SEG = 4 * BLCK;
const PG_EPOCH_MS = 946_684_800_000;

export function record(rmid: number, info: number, data: Buffer, corruptCrc = false): Buffer {
  const body = Buffer.concat([data.length < 256 ? Buffer.from([255, data.length]) : Buffer.concat([Buffer.from([254]), u32(data.length)]), data]);
  const rec = Buffer.alloc(24 + body.length);
  rec.writeUInt32LE(rec.length, 0);
  rec.writeUInt32LE(0, 4);
  rec.writeBigUInt64LE(0n, 8);
  rec[16] = info;
  rec[17] = rmid;
  body.copy(rec, 24);
  setCrc(rec, corruptCrc);
  return rec;
}

/** Records whose CRC was made wrong on purpose (WalBuilder.add keeps it wrong when it sets xl_prev). */
const badCrc = new WeakSet<Buffer>();

function setCrc(rec: Buffer, corrupt: boolean): void {
  const crc = crc32cJs(rec.subarray(0, 20), crc32cJs(rec.subarray(24)));
  rec.writeUInt32LE((corrupt ? crc ^ 1 : crc) >>> 0, 20);
  if (corrupt) badCrc.add(rec);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

export function restorePoint(name: string, ms: number, corruptCrc = false): Buffer {
  const d = Buffer.alloc(72);
  d.writeBigInt64LE(BigInt(ms - PG_EPOCH_MS) * 1000n, 0);
  d.write(name, 8);
  return record(0, 0x70, d, corruptCrc);
}

export const filler = (n: number): Buffer => record(10, 0x00, Buffer.alloc(n, 0xab));
export const walSwitch = (): Buffer => record(0, 0x40, Buffer.alloc(0));

/** WAL laid out from LSN `start` (a segment boundary) as PostgreSQL writes it. */
export class WalBuilder {
  readonly bytes: Buffer;
  pos = 0;
  /** The last record's LSN: the next one's xl_prev (null: 0, the first record of a test's WAL). */
  last: bigint | null = null;
  /** XLOG_PAGE_MAGIC written in each page header (PostgreSQL 15's by default). */
  magic = 0xd110;
  constructor(readonly start: bigint, segments: number) {
    this.bytes = Buffer.alloc(segments * SEG);
  }
  private header(remaining: number, flags = 0): void {
    const long = this.pos % SEG === 0;
    const b = this.bytes;
    b.writeUInt16LE(this.magic, this.pos);
    b.writeUInt16LE((remaining > 0 ? 1 : 0) | (long ? 2 : 0) | flags, this.pos + 2);
    b.writeUInt32LE(1, this.pos + 4);
    b.writeBigUInt64LE(this.start + BigInt(this.pos), this.pos + 8);
    b.writeUInt32LE(remaining, this.pos + 16);
    if (long) {
      b.writeBigUInt64LE(7n, this.pos + 24);
      b.writeUInt32LE(SEG, this.pos + 32);
      b.writeUInt32LE(BLCK, this.pos + 36);
    }
    this.pos += long ? 40 : 24;
  }
  /** Where the next record would begin. */
  next(): bigint {
    let p = (this.pos + 7) & ~7;
    if (p % BLCK === 0) p += p % SEG === 0 ? 40 : 24;
    return this.start + BigInt(p);
  }
  /** Writes `rec` (its xl_prev set to the last record's LSN, or `prev`) where the next record goes; its LSN. */
  add(rec: Buffer, prev?: bigint): bigint {
    this.pos = (this.pos + 7) & ~7;
    if (this.pos % BLCK === 0) this.header(0);
    const lsn = this.start + BigInt(this.pos);
    rec.writeBigUInt64LE(prev ?? this.last ?? 0n, 8);
    setCrc(rec, badCrc.has(rec));
    this.last = lsn;
    let done = 0;
    while (done < rec.length) {
      const n = Math.min(BLCK - (this.pos % BLCK), rec.length - done);
      rec.copy(this.bytes, this.pos, done, done + n);
      this.pos += n;
      done += n;
      if (done < rec.length) this.header(rec.length - done);
    }
    return lsn;
  }
  /** Records of filler until the next record would begin at `target` (8-aligned, at least 120 bytes ahead). */
  padTo(target: bigint): void {
    while (target - this.next() > 3300n) this.add(filler(3000));
    while (this.next() < target) {
      const d = Number(target - this.next());
      assert.ok(d >= 32, `cannot pad ${d} bytes`);
      this.add(filler(d % 32 === 0 ? 6 : 14)); // records of 32 or 40 bytes
    }
    assert.equal(this.next(), target);
  }
  /** The position `gap` bytes before the end of a page at least 120 bytes ahead. */
  beforePageEnd(gap: number): bigint {
    const n = this.next() - this.start;
    let t = (n / BigInt(BLCK) + 1n) * BigInt(BLCK) - BigInt(gap);
    if (t - n < 120n) t += BigInt(BLCK);
    return this.start + t;
  }
  /**
   * What recovery after a crash writes where the last record added was broken off at a page end:
   * the page holding its rest begins anew (no rest of that record), flagged
   * XLP_FIRST_IS_OVERWRITE_CONTRECORD unless `flagged` is false; the next record follows `prev`,
   * the last whole record.
   */
  breakOff(prev: bigint, flagged = true): void {
    this.pos = Math.floor(this.pos / BLCK) * BLCK;
    this.bytes.fill(0, this.pos, this.pos + BLCK);
    this.header(0, flagged ? 0x0008 : 0);
    this.last = prev;
  }
  /** Pages after the last record written get their headers, as the server writes them ahead. */
  closePages(): void {
    for (let p = Math.ceil(this.pos / BLCK) * BLCK; p < this.bytes.length; p += BLCK) {
      this.pos = p;
      this.header(0);
    }
  }
  segment(i: number): Buffer {
    return this.bytes.subarray(i * SEG, (i + 1) * SEG);
  }
}


/** What a commit's or abort's xinfo announces after its xact_time (access/xact.h), each part only when given. */
export interface XactParts {
  dbinfo?: boolean;
  subxacts?: number[];
  rels?: number;
  /** Dropped statistics entries, of 12 bytes (PostgreSQL 15-17) or 16 (18). */
  stats?: { count: number; size: 12 | 16 };
  invals?: number;
  twophaseXid?: number;
}

const counted = (n: number, size: number, fill?: (b: Buffer) => void): Buffer => {
  const b = Buffer.alloc(4 + n * size);
  b.writeInt32LE(n, 0);
  fill?.(b);
  return b;
};

/** A commit (or abort) record at `ms`, its main data padded to `size` bytes (xl_xact_commit's xact_time first). */
export function transactionEnd(ms: number, opts: { abort?: boolean; size?: number; xid?: number; prepared?: boolean; parts?: XactParts } = {}): Buffer {
  const time = Buffer.alloc(8);
  time.writeBigInt64LE(BigInt(ms - PG_EPOCH_MS) * 1000n, 0);
  const x = opts.parts ?? {};
  let xinfo = 0;
  const extra: Buffer[] = [];
  if (x.dbinfo) (xinfo |= 1), extra.push(Buffer.alloc(8));
  if (x.subxacts) (xinfo |= 2), extra.push(counted(x.subxacts.length, 4, (b) => x.subxacts!.forEach((id, i) => b.writeUInt32LE(id, 4 + 4 * i))));
  if (x.rels !== undefined) (xinfo |= 4), extra.push(counted(x.rels, 12));
  if (x.stats) (xinfo |= 1 << 8), extra.push(counted(x.stats.count, x.stats.size));
  if (x.invals !== undefined) (xinfo |= 8), extra.push(counted(x.invals, 16));
  if (x.twophaseXid !== undefined) {
    xinfo |= 16;
    const b = Buffer.alloc(4);
    b.writeUInt32LE(x.twophaseXid, 0);
    extra.push(b);
  }
  const head = xinfo === 0 ? [time] : [time, Buffer.from(new Uint32Array([xinfo]).buffer), ...extra];
  const body = Buffer.concat(head);
  const d = Buffer.alloc(Math.max(opts.size ?? 16, body.length));
  body.copy(d);
  // XLOG_XACT_COMMIT, _ABORT, _COMMIT_PREPARED, _ABORT_PREPARED; XLOG_XACT_HAS_INFO with parts
  const rec = record(1, (opts.prepared ? (opts.abort ? 0x40 : 0x30) : opts.abort ? 0x20 : 0x00) | (xinfo === 0 ? 0 : 0x80), d);
  rec.writeUInt32LE(opts.xid ?? 0, 4);
  setCrc(rec, false);
  return rec;
}
