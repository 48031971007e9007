// Whether a WAL segment a cluster left behind holds nothing but its shutdown checkpoint. A primary
// that archives switches to a new segment when it stops cleanly (ShutdownXLOG's WAL switch, so that
// the segment holding its last transactions is archived), and writes the shutdown checkpoint as the
// first record of the next one, which is never archived: that segment holds no transaction. It is
// one when pg_control says the cluster was shut down cleanly (as a primary: nothing was written
// after that checkpoint), its checkpoint begins right after the segment's long page header on the
// segment's timeline, and that checkpoint is the segment's only whole record.

import { readFileSync } from 'node:fs';
import { controlCheckpoint, DB_SHUTDOWNED } from './control-file.js';
import { parseSegmentFileName, segmentStart } from './lsn.js';
import { WalRecordScanner } from './wal-records.js';

/** SizeOfXLogLongPHD, MAXALIGNed: where a segment's first record begins when none runs on into it. */
const FIRST_RECORD = 40n;
const RM_XLOG_ID = 0;
const XLOG_CHECKPOINT_SHUTDOWN = 0x00;

/** Whether segment `name` at `path` holds only the shutdown checkpoint of the stopped cluster in `pgData`. */
export function holdsOnlyShutdownCheckpoint(pgData: string, path: string, name: string, segmentSize: number, crc32c: (chunk: Uint8Array, crc?: number) => number): boolean {
  const control = controlCheckpoint(pgData);
  const seg = parseSegmentFileName(name, segmentSize);
  if (control === null || seg === null || control.state !== DB_SHUTDOWNED || control.timeline !== seg.timeline) return false;
  const start = segmentStart(seg.segNo, segmentSize);
  if (control.checkPoint !== start + FIRST_RECORD) return false;
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch {
    return false;
  }
  if (data.length !== segmentSize) return false;
  // The record there is a shutdown checkpoint (xl_info XLOG_CHECKPOINT_SHUTDOWN, xl_rmid RM_XLOG_ID).
  const at = Number(FIRST_RECORD);
  if ((data[at + 16]! & 0xf0) !== XLOG_CHECKPOINT_SHUTDOWN || data[at + 17] !== RM_XLOG_ID) return false;
  const records: number[] = [];
  const scan = new WalRecordScanner({ crc32c, onRestorePoint: () => undefined, onRecord: (lsn) => void records.push(lsn) }).segment(start, data);
  return scan === 'end' && records.length === 1 && BigInt(records[0]!) === control.checkPoint;
}
