// Names of the files receive-wal writes, as pg_receivewal names them: a segment
// (TTTTTTTTXXXXXXXXYYYYYYYY), compressed ones with .gz or .lz4 after it, and the
// segment being received with .partial after that (".gz.partial").

import { parseSegmentFileName } from '../postgres/lsn.js';
import { compressionExtension } from '../storage/compress/levels.js';

export type ReceivedCompression = 'gzip' | 'lz4';

export interface ReceivedFileName {
  /** The segment's own name, without suffixes. */
  segment: string;
  timeline: number;
  segNo: bigint;
  compression: ReceivedCompression | null;
  partial: boolean;
}

export function parseReceivedFileName(name: string, segmentSize: number): ReceivedFileName | null {
  const m = /^([0-9A-F]{24})(\.gz|\.lz4)?(\.partial)?$/.exec(name);
  if (!m) return null;
  const seg = parseSegmentFileName(m[1]!, segmentSize);
  if (!seg) return null;
  const compression = m[2] === '.gz' ? 'gzip' : m[2] === '.lz4' ? 'lz4' : null;
  return { segment: m[1]!, timeline: seg.timeline, segNo: seg.segNo, compression, partial: m[3] !== undefined };
}

export function receivedFileName(segment: string, compression: ReceivedCompression | null, partial: boolean): string {
  return segment + (compression ? compressionExtension(compression) : '') + (partial ? '.partial' : '');
}
