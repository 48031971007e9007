// WAL positions (LSN, "X/X") and segment arithmetic, as in PostgreSQL's
// xlog_internal.h: segment names are TTTTTTTT + XLogId + segment-within-id, 8 hex each.

export type Lsn = bigint;

export function parseLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`invalid LSN "${text}": expected the form X/X (hexadecimal)`);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

export function segmentNumber(lsn: Lsn, segSize: number): bigint {
  return lsn / BigInt(segSize);
}

/** The segment holding the byte just before lsn: where WAL ending at lsn ends (PostgreSQL's XLByteToPrevSeg). */
export function segmentBefore(lsn: Lsn, segSize: number): bigint {
  return (lsn - 1n) / BigInt(segSize);
}

export function segmentStart(segNo: bigint, segSize: number): Lsn {
  return segNo * BigInt(segSize);
}

export function segmentFileName(timeline: number, segNo: bigint, segSize: number): string {
  const perId = 0x100000000n / BigInt(segSize);
  const hi = segNo / perId;
  const lo = segNo % perId;
  return hex8(BigInt(timeline)) + hex8(hi) + hex8(lo);
}

export function parseSegmentFileName(name: string, segSize: number): { timeline: number; segNo: bigint } | null {
  const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/.exec(name);
  if (!m) return null;
  const perId = 0x100000000n / BigInt(segSize);
  return { timeline: parseInt(m[1]!, 16), segNo: BigInt('0x' + m[2]) * perId + BigInt('0x' + m[3]) };
}

export function timelineHistoryFileName(timeline: number): string {
  return `${hex8(BigInt(timeline))}.history`;
}

function hex8(n: bigint): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}
