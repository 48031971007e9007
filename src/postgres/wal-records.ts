// Reading WAL records out of archived segments, as far as restore needs: the
// restore points (pg_create_restore_point) a named recovery target stops at.
// The format is access/xlog_internal.h's and access/xlogrecord.h's, the same in
// PostgreSQL 13 to 18: pages (XLOG_BLCKSZ, from the segment's long header) each
// begin with a page header (24 bytes, 40 for a segment's first page); records
// begin at 8-byte boundaries, a 24-byte header first (xl_tot_len, xl_xid,
// xl_prev, xl_info, xl_rmid, 2 bytes of padding, xl_crc), and run on across
// page and segment boundaries, where the next page's header says how many of
// their bytes are left (xlp_rem_len, with XLP_FIRST_IS_CONTRECORD).
//
// Segments are fed in order; a record crossing into the next segment is
// completed there. The WAL ends, as for recovery, where a page is not the page
// its position expects (a recycled segment's old bytes) or a record's length is
// impossible (zeros past the last record).

import type { Lsn } from './lsn.js';

export interface RestorePointRecord {
  /** Where the record begins (the LSN recovery_target_name stops after). */
  lsn: Lsn;
  /** Just past the record, MAXALIGNed (recovery's EndRecPtr: consistency is judged there). */
  end: Lsn;
  name: string;
  /** When pg_create_restore_point() wrote it (rp_time), ms since 1970. */
  timeMs: number;
}

/** A transaction's commit or abort record: what a recovery_target_time is compared with. */
export interface TransactionEndRecord {
  lsn: Lsn;
  /** xact_time, microseconds since 1970 (PostgreSQL's precision). */
  timeUs: bigint;
  commit: boolean;
  /**
   * The transaction's ID: the record's xl_xid, or for a prepared transaction's end the ID in its
   * data; null when that could not be read (the record kept only in part, across pages).
   */
  xid: number | null;
  /** Its subtransactions' IDs, as far as read (recovery never stops at one of them). */
  subxacts: number[];
}

export interface WalScannerOptions {
  onRestorePoint(p: RestorePointRecord): void;
  /** Commits and aborts (also of prepared transactions), the records recovery stops before for a target time. */
  onTransactionEnd?(t: TransactionEndRecord): void;
  /** Every whole record read, where it begins and ends (as numbers: WAL positions stay far below 2^53), its resource manager and xl_info. */
  onRecord?(lsn: number, end: number, rmid: number, info: number): void;
  /** CRC-32C continuing from `crc` (0 at the start): a restore point's record is checked before it is believed. */
  crc32c(chunk: Uint8Array, crc?: number): number;
}

/** What feeding a segment found: go on with the next one, or the WAL ends in it. */
export type SegmentScan = 'next' | 'end';

const SHORT_PAGE_HEADER = 24;
const LONG_PAGE_HEADER = 40;
const RECORD_HEADER = 24;
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;
const RM_XLOG_ID = 0;
const RM_XACT_ID = 1;
/** access/xact.h: XLOG_XACT_OPMASK, and the operations with an xact_time first in their main data. */
const XLOG_XACT_OPMASK = 0x70;
const XACT_ENDS: Record<number, boolean> = { 0x00: true, 0x30: true, 0x20: false, 0x40: false }; // COMMIT, COMMIT_PREPARED, ABORT, ABORT_PREPARED
const XLOG_SWITCH = 0x40;
const XLOG_RESTORE_POINT = 0x70;
/** xl_restore_point: TimestampTz rp_time, char rp_name[MAXFNAMELEN = 64]. */
const RESTORE_POINT_DATA = 8 + 64;
/**
 * A COMMIT PREPARED or ROLLBACK PREPARED record, kept whole while it crosses pages however long (up
 * to KEEP_PREPARED): its transaction's ID comes last, after its subtransactions, relations and
 * invalidations (black-box run W: one of 3,000 subtransactions, 12 KB, read as a doubt).
 */
function keptWhole(buf: Buffer, off: number, total: number): boolean {
  const op = buf[off + 16]! & XLOG_XACT_OPMASK;
  return buf[off + 17] === RM_XACT_ID && (op === 0x30 || op === 0x40) && total <= KEEP_PREPARED;
}

const KEEP_PREPARED = 64 * 1024 * 1024;

/** Records no longer than this are kept whole while they cross a page (a restore point's is ~100 bytes); of the others, the first KEEP_HEAD bytes (header, data headers, a commit's xact_time). */
const KEEP_WHOLE = 512;
const KEEP_HEAD = 64;
/** XLogRecordMaxSize (1020 MB): a larger length is not a record. */
const MAX_RECORD = 1020 * 1024 * 1024;
const PG_EPOCH_MS = 946_684_800_000;
const PG_EPOCH_US = 946_684_800_000_000n;
const XLR_BLOCK_ID_DATA_SHORT = 255;
const XLR_BLOCK_ID_DATA_LONG = 254;
const XLR_BLOCK_ID_ORIGIN = 253;
const XLR_BLOCK_ID_TOPLEVEL_XID = 252;

const align8 = (n: number): number => (n + 7) & ~7;

/** Whether this machine reads a Uint32Array little-endian, as readUInt32LE does (every platform Node runs on today). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Reads little-endian 32-bit words at 4-aligned offsets of a buffer: through a Uint32Array view
 * when the buffer allows one (one load instead of readUInt32LE's four and their checks: the record
 * walk reads three per record, some 100,000 records per 16 MiB of pgbench WAL).
 */
class Words {
  private readonly view: Uint32Array | null;

  constructor(private readonly buf: Buffer) {
    this.view = LITTLE_ENDIAN && buf.byteOffset % 4 === 0 ? new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2) : null;
  }

  /** The word at `off` (a multiple of 4, off + 4 <= the buffer's length). */
  at(off: number): number {
    return this.view !== null ? this.view[off >>> 2]! : this.buf.readUInt32LE(off);
  }
}

interface Pending {
  /** Where the record begins (a JavaScript number: WAL positions stay far below 2^53). */
  lsn: number;
  total: number;
  got: number;
  /** The bytes kept: all of them (total <= KEEP_WHOLE, or a prepared transaction's end: keptWhole), else the first KEEP_HEAD. */
  kept: Buffer;
}

type Seen = 'switch' | 'end' | 'other';

export class WalRecordScanner {
  private pending: Pending | null = null;
  /** Where the next segment fed must begin to continue the WAL read so far. */
  private nextSegment: Lsn | null = null;
  /** The last whole record's LSN: the next record's xl_prev, as recovery checks it. */
  private prev: number | null = null;
  /** The segment's XLOG_PAGE_MAGIC (the server's major version: xactIds). */
  private magic = 0;

  constructor(private readonly opts: WalScannerOptions) {}

  /**
   * Reads the records of the segment beginning at `start`. Where recovery would find the WAL
   * invalid (a page not at its address, an impossible length, a record not following the one
   * before, the rest of a record missing, a restore point whose CRC is wrong), the WAL ends.
   */
  segment(start: Lsn, data: Buffer): SegmentScan {
    if (this.nextSegment !== start) {
      this.pending = null;
      this.prev = null;
    }
    this.nextSegment = start + BigInt(data.length);
    if (data.length < LONG_PAGE_HEADER || (data.readUInt16LE(2) & XLP_LONG_HEADER) === 0) return this.ended();
    this.magic = data.readUInt16LE(0);
    const blockSize = data.readUInt32LE(36);
    if (blockSize < 1024 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0 || data.length % blockSize !== 0) return this.ended();
    const base = Number(start);
    const words = new Words(data);
    for (let page = 0; page < data.length; page += blockSize) {
      const info = data.readUInt16LE(page + 2);
      if (words.at(page + 8) + words.at(page + 12) * 4294967296 !== base + page) return this.ended();
      const end = page + blockSize;
      let pos = page + ((info & XLP_LONG_HEADER) !== 0 ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER);
      const p = this.pending;
      if ((info & XLP_FIRST_IS_CONTRECORD) !== 0) {
        const remaining = data.readUInt32LE(page + 16);
        if (p !== null) {
          if (p.total - p.got !== remaining) return this.ended();
          const take = Math.min(remaining, end - pos);
          if (p.got < 18 && p.kept.length < p.total && p.got + Math.min(take, p.kept.length - p.got) >= 18) {
            // Its header whole only now: a record kept whole once known, as at its start.
            data.copy(p.kept, p.got, pos, pos + 18 - p.got);
            if (keptWhole(p.kept, 0, p.total)) p.kept = Buffer.concat([p.kept.subarray(0, p.got)], p.total);
          }
          if (p.got < p.kept.length) data.copy(p.kept, p.got, pos, pos + Math.min(take, p.kept.length - p.got));
          p.got += take;
          if (p.got < p.total) continue;
          this.pending = null;
          const seen = this.complete(p.kept, new Words(p.kept), 0, p.total, p.lsn, base + align8(pos + take));
          if (seen !== 'other') return seen === 'switch' ? this.switched() : this.ended();
        } else if (this.prev !== null) {
          return this.ended(); // the rest of a record that was whole already
        } else if (remaining >= end - pos) {
          continue; // the scan began inside a record: its rest
        }
        pos = align8(pos + remaining);
      } else if (p !== null) {
        // A record broken off where a crash left it is written over after recovery, which says so
        // (XLP_FIRST_IS_OVERWRITE_CONTRECORD); otherwise its rest is missing: the WAL ends.
        if ((info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) === 0) return this.ended();
        this.pending = null;
      }
      while (pos < end) {
        const total = words.at(pos);
        if (total < RECORD_HEADER || total > MAX_RECORD) return this.ended();
        if (pos + total <= end) {
          // Most records are neither kind looked for: no copy, no view, no BigInt for them.
          const seen = this.complete(data, words, pos, total, base + pos, base + align8(pos + total));
          if (seen !== 'other') return seen === 'switch' ? this.switched() : this.ended();
          pos = align8(pos + total);
        } else {
          const got = end - pos;
          const kept = Buffer.alloc(total <= KEEP_WHOLE || (got >= 18 && keptWhole(data, pos, total)) ? total : KEEP_HEAD);
          data.copy(kept, 0, pos, pos + Math.min(got, kept.length));
          this.pending = { lsn: base + pos, total, got, kept };
          pos = end;
        }
      }
    }
    return 'next';
  }

  /** Where the record left unfinished at the end of the last segment fed begins (null: none). */
  pendingStart(): number | null {
    return this.pending?.lsn ?? null;
  }

  /** How many bytes of the record left unfinished at the end of the last segment fed are still to come (null: none). */
  pendingRemaining(): number | null {
    return this.pending === null ? null : this.pending.total - this.pending.got;
  }

  /**
   * Whether the record left unfinished at the end of the last segment fed (it runs on into the
   * next) is, or may be, a commit or abort: its header is not all there yet, or says so.
   */
  pendingMayEndTransaction(): boolean {
    const p = this.pending;
    if (p === null) return false;
    if (Math.min(p.got, p.kept.length) < 18) return true;
    return p.kept[17] === RM_XACT_ID && XACT_ENDS[p.kept[16]! & XLOG_XACT_OPMASK] !== undefined;
  }

  /**
   * Whether the record left unfinished at the end of the last segment fed is, or may be, a restore
   * point: its header is not all there yet, or says so.
   */
  pendingMayBeRestorePoint(): boolean {
    const p = this.pending;
    if (p === null) return false;
    if (Math.min(p.got, p.kept.length) < 18) return true;
    return p.kept[17] === RM_XLOG_ID && (p.kept[16]! & 0xf0) === XLOG_RESTORE_POINT;
  }

  private ended(): SegmentScan {
    this.pending = null;
    this.nextSegment = null;
    this.prev = null;
    return 'end';
  }

  /** After an XLOG_SWITCH record the rest of its segment holds nothing. */
  private switched(): SegmentScan {
    this.pending = null;
    return 'next';
  }

  /**
   * The record at `off` in `buf` (the whole record, or for a long one kept across pages its first
   * KEEP_HEAD bytes; `words` reads its header's words), beginning at `lsn` and ending (MAXALIGNed,
   * as recovery's EndRecPtr) at `end`.
   */
  private complete(buf: Buffer, words: Words, off: number, total: number, lsn: number, end: number): Seen {
    if (this.prev !== null && words.at(off + 8) + words.at(off + 12) * 4294967296 !== this.prev) return 'end';
    this.prev = lsn;
    const info = buf[off + 16]!;
    const rmid = buf[off + 17]!;
    this.opts.onRecord?.(lsn, end, rmid, info);
    if (rmid === RM_XACT_ID) {
      if (this.opts.onTransactionEnd === undefined) return 'other';
      const commit = XACT_ENDS[info & XLOG_XACT_OPMASK];
      if (commit === undefined) return 'other';
      const bytes = buf.subarray(off, off + Math.min(total, buf.length - off));
      const data = mainData(bytes);
      if (data !== null && data.start + 8 <= bytes.length) {
        const prepared = (info & XLOG_XACT_OPMASK) === 0x30 || (info & XLOG_XACT_OPMASK) === 0x40;
        const ids = xactIds(bytes, data, info, commit, this.magic);
        const xid = prepared ? (ids?.twophase ?? null) : words.at(off + 4);
        this.opts.onTransactionEnd({ lsn: BigInt(lsn), timeUs: PG_EPOCH_US + bytes.readBigInt64LE(data.start), commit, xid, subxacts: ids?.subxacts ?? [] });
      }
      return 'other';
    }
    if (rmid !== RM_XLOG_ID) return 'other';
    if ((info & 0xf0) === XLOG_SWITCH) return 'switch';
    if ((info & 0xf0) === XLOG_RESTORE_POINT && buf.length - off >= total) {
      const rec = buf.subarray(off, off + total);
      // The CRC covers the data after the header, then the header up to xl_crc: recovery ends at a record failing it.
      const crc = this.opts.crc32c(rec.subarray(0, 20), this.opts.crc32c(rec.subarray(RECORD_HEADER)));
      if ((crc >>> 0) !== rec.readUInt32LE(20)) return 'end';
      const point = restorePoint(rec, lsn, end);
      if (point !== null) this.opts.onRestorePoint(point);
    }
    return 'other';
  }
}

function restorePoint(rec: Buffer, lsn: number, end: number): RestorePointRecord | null {
  const main = mainData(rec);
  if (main === null || main.length < RESTORE_POINT_DATA || main.start + main.length > rec.length) return null;
  const data = rec.subarray(main.start, main.start + RESTORE_POINT_DATA);
  const nameBytes = data.subarray(8, 8 + 64);
  const nul = nameBytes.indexOf(0);
  return {
    lsn: BigInt(lsn),
    end: BigInt(end),
    name: nameBytes.subarray(0, nul < 0 ? 64 : nul).toString('utf8'),
    timeMs: PG_EPOCH_MS + Number(data.readBigInt64LE(0) / 1000n),
  };
}

/**
 * Where a record's main data begins (after the record header and the data headers: origin,
 * top-level xid) and how long it is; null for a record with block references (not one read
 * here) or whose headers are not all in `rec`.
 */
function mainData(rec: Buffer): { start: number; length: number } | null {
  let p = RECORD_HEADER;
  while (p + 1 < rec.length) {
    const id = rec[p]!;
    if (id === XLR_BLOCK_ID_DATA_SHORT) return { start: p + 2, length: rec[p + 1]! };
    if (id === XLR_BLOCK_ID_DATA_LONG) return p + 5 <= rec.length ? { start: p + 5, length: rec.readUInt32LE(p + 1) } : null;
    if (id === XLR_BLOCK_ID_ORIGIN) p += 3;
    else if (id === XLR_BLOCK_ID_TOPLEVEL_XID) p += 5;
    else return null;
  }
  return null;
}

/** access/xact.h: a commit's or abort's xinfo flags, after its xact_time when XLOG_XACT_HAS_INFO. */
const XLOG_XACT_HAS_INFO = 0x80;
const XINFO_DBINFO = 1 << 0;
const XINFO_SUBXACTS = 1 << 1;
const XINFO_RELFILELOCATORS = 1 << 2;
const XINFO_INVALS = 1 << 3;
const XINFO_TWOPHASE = 1 << 4;
const XINFO_DROPPED_STATS = 1 << 8;
/** XLOG_PAGE_MAGIC of PostgreSQL 18, whose xl_xact_stats_item has a 64-bit object ID (16 bytes; 12 before). */
const PG18_PAGE_MAGIC = 0xd118;

/**
 * A commit's or abort's subtransactions and, for a prepared transaction's end, its own ID (in
 * the order ParseCommitRecord / ParseAbortRecord read them: dbinfo, subxacts, relfilelocators,
 * dropped stats, invals (commits only), twophase); null when the main data is not all there.
 */
function xactIds(rec: Buffer, data: { start: number; length: number }, info: number, commit: boolean, magic: number): { twophase: number | null; subxacts: number[] } | null {
  const end = data.start + data.length;
  if (end > rec.length) return null;
  let p = data.start + 8; // xact_time
  const subxacts: number[] = [];
  if ((info & XLOG_XACT_HAS_INFO) === 0) return { twophase: null, subxacts };
  if (p + 4 > end) return null;
  const xinfo = rec.readUInt32LE(p);
  p += 4;
  /** Skips a counted array (an int, then that many items of `size` bytes); false past the end. */
  const skip = (size: number, each?: (at: number) => void): boolean => {
    if (p + 4 > end) return false;
    const n = rec.readInt32LE(p);
    p += 4;
    if (n < 0 || p + n * size > end) return false;
    if (each) for (let i = 0; i < n; i++) each(p + i * size);
    p += n * size;
    return true;
  };
  if (xinfo & XINFO_DBINFO) p += 8;
  if (xinfo & XINFO_SUBXACTS && !skip(4, (at) => subxacts.push(rec.readUInt32LE(at)))) return null;
  if (xinfo & XINFO_RELFILELOCATORS && !skip(12)) return null;
  if (xinfo & XINFO_DROPPED_STATS && !skip(magic >= PG18_PAGE_MAGIC ? 16 : 12)) return null;
  if (commit && xinfo & XINFO_INVALS && !skip(16)) return null;
  if ((xinfo & XINFO_TWOPHASE) === 0) return { twophase: null, subxacts };
  return p + 4 <= end ? { twophase: rec.readUInt32LE(p), subxacts } : null;
}
