// The long page header at the start of every WAL segment (access/xlog_internal.h,
// XLogLongPageHeaderData): magic, flags, timeline, page address, then the system
// identifier, segment size and block size. archive-push checks a segment's header
// against its stanza before storing it.

import { formatLsn, parseSegmentFileName, segmentStart } from './lsn.js';

export const XLP_LONG_HEADER = 0x0002;

export interface WalLongPageHeader {
  magic: number;
  info: number;
  timeline: number;
  pageAddress: bigint;
  systemIdentifier: string;
  segmentSize: number;
  blockSize: number;
}

const OFFSET = {
  magic: 0,
  info: 2,
  timeline: 4,
  pageAddress: 8,
  remLen: 16,
  systemIdentifier: 24, // after the short header, MAXALIGNed to 24 bytes
  segmentSize: 32,
  blockSize: 36,
} as const;

export const WAL_LONG_HEADER_SIZE = 40;

/** Parses the header; null when the bytes are not a long page header (no XLP_LONG_HEADER flag). */
export function parseWalLongPageHeader(buf: Buffer): WalLongPageHeader | null {
  if (buf.length < WAL_LONG_HEADER_SIZE) return null;
  const info = buf.readUInt16LE(OFFSET.info);
  if ((info & XLP_LONG_HEADER) === 0) return null;
  return {
    magic: buf.readUInt16LE(OFFSET.magic),
    info,
    timeline: buf.readUInt32LE(OFFSET.timeline),
    pageAddress: buf.readBigUInt64LE(OFFSET.pageAddress),
    systemIdentifier: buf.readBigUInt64LE(OFFSET.systemIdentifier).toString(),
    segmentSize: buf.readUInt32LE(OFFSET.segmentSize),
    blockSize: buf.readUInt32LE(OFFSET.blockSize),
  };
}

/**
 * What is wrong with a segment's first page header for the file name it has, or null when they
 * agree: xlp_pageaddr must be where the named segment starts, and xlp_tli may not be above the
 * name's timeline (it is below it in the first segment of a new timeline, whose start PostgreSQL
 * copies from the old timeline's segment). A segment copied to another name fails this.
 */
export function segmentNameMismatch(name: string, header: WalLongPageHeader, segmentSize: number): string | null {
  const seg = parseSegmentFileName(name.slice(0, 24), segmentSize);
  if (!seg) return `"${name}" is not a WAL segment name`;
  const { timeline } = seg;
  const start = segmentStart(seg.segNo, segmentSize);
  const problems: string[] = [];
  if (header.pageAddress !== start) problems.push(`page address ${formatLsn(header.pageAddress)}, the name says ${formatLsn(start)}`);
  if (header.timeline > timeline || header.timeline === 0) problems.push(`timeline ${header.timeline}, the name says ${timeline}`);
  return problems.length === 0 ? null : `its first page header has ${problems.join(' and ')}`;
}


/** The first page header of `data` when it is segment `name`'s (its address and timeline), else null. */
export function headerOfSegment(name: string, data: Buffer): WalLongPageHeader | null {
  const h = parseWalLongPageHeader(data);
  return h !== null && segmentNameMismatch(name, h, h.segmentSize) === null ? h : null;
}
