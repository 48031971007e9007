// The long page header at the start of every WAL segment (access/xlog_internal.h,
// XLogLongPageHeaderData): magic, flags, timeline, page address, then the system
// identifier, segment size and block size. archive-push checks a segment's header
// against its stanza before storing it.

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
