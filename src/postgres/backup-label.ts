// backup_label (in a base backup) and backup history files (NNN.XXXXXXXX.backup,
// archived at the end of a backup): "KEY: value" lines written by PostgreSQL's
// do_pg_backup_start / do_pg_backup_stop, the same in 13 to 18 for the keys
// read here. The start WAL location is where replay must begin; the stop
// location (history files only) is where the backup becomes consistent.

import { parseLsn } from './lsn.js';
import type { Lsn } from './lsn.js';

export interface BackupLabel {
  startLsn: Lsn;
  startWalFile: string;
  checkpointLsn: Lsn;
  method: string | undefined;
  from: 'primary' | 'standby' | undefined;
  startTime: string | undefined;
  label: string | undefined;
  startTimeline: number | undefined;
  /** Backup history files only. */
  stopLsn?: Lsn;
  stopWalFile?: string;
  stopTime?: string;
  stopTimeline?: number;
}

function fields(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) map.set(line.slice(0, i).trim(), line.slice(i + 2).trim());
  }
  return map;
}

const LOCATION = /^([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}) \(file ([0-9A-F]{24})\)$/;

export function parseBackupLabel(text: string, file = 'backup_label'): BackupLabel {
  const f = fields(text);
  const need = (key: string): string => {
    const v = f.get(key);
    if (v === undefined) throw new Error(`${file}: no "${key}" line`);
    return v;
  };
  const location = (key: string): { lsn: Lsn; walFile: string } => {
    const m = LOCATION.exec(need(key));
    if (!m) throw new Error(`${file}: invalid "${key}" line: ${f.get(key)}`);
    return { lsn: parseLsn(m[1]!), walFile: m[2]! };
  };
  const start = location('START WAL LOCATION');
  const from = f.get('BACKUP FROM');
  const tli = f.get('START TIMELINE');
  const label: BackupLabel = {
    startLsn: start.lsn,
    startWalFile: start.walFile,
    checkpointLsn: parseLsn(need('CHECKPOINT LOCATION')),
    method: f.get('BACKUP METHOD'),
    from: from === 'primary' || from === 'standby' ? from : undefined,
    startTime: f.get('START TIME'),
    label: f.get('LABEL'),
    startTimeline: tli === undefined ? undefined : Number(tli),
  };
  if (f.has('STOP WAL LOCATION')) {
    const stop = location('STOP WAL LOCATION');
    label.stopLsn = stop.lsn;
    label.stopWalFile = stop.walFile;
    const stopTime = f.get('STOP TIME');
    if (stopTime !== undefined) label.stopTime = stopTime;
    const stopTli = f.get('STOP TIMELINE');
    if (stopTli !== undefined) label.stopTimeline = Number(stopTli);
  }
  return label;
}
