// The recovery settings restore writes into the restored data directory:
// its block in postgresql.auto.conf (restore_command, target, timeline,
// action, the DBA's --recovery-option), recovery settings commented out where
// they would still apply, and the one signal file.

import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../storage/durable.js';
import { formatLsn } from '../postgres/lsn.js';
import { RECOVERY_SIGNAL, STANDBY_SIGNAL_FILE, recoverySettingsBlock, setsSetting, settingValue, withRecoverySettings, withoutRecoverySettings } from '../postgres/restore-settings.js';
import type { RecoverySettings } from '../postgres/restore-settings.js';
import { readOwnTargetFile } from './target-files.js';
import type { TargetOptions } from './restore-target.js';
import type { RecoveryOption } from './recovery-options.js';

/** What of a restore request the settings depend on (engine.ts's RestoreRequest). */
export interface RecoverySettingsRequest {
  target: TargetOptions;
  standby: boolean;
  restoreCommand(timeline: number | null): string;
  recoveryOptions?: readonly RecoveryOption[];
  log(line: string): void;
}

/**
 * The settings for the server: the timeline the plan checked is written by number (a history file
 * archived after the plan must not send recovery down a branch nobody checked), except for a
 * standby asked to follow the latest timeline (it must follow promotions), and the backup's own
 * timeline, written 'current': the same branch, and PostgreSQL asks a numbered timeline above 1
 * for its history file (FATAL "recovery target timeline N does not exist" when it is not archived),
 * 'current' does not.
 */
export function writeRecoverySettings(pgData: string, req: RecoverySettingsRequest, timeline: number, backupTimeline: number, sync: boolean): void {
  const t = req.target.target;
  const followLatest = req.standby && req.target.timeline === 'latest';
  const goal = followLatest ? 'latest' : timeline === backupTimeline ? 'current' : String(timeline);
  const s: RecoverySettings = { restoreCommand: req.restoreCommand(followLatest ? null : timeline), timeline: goal, standby: req.standby };
  if (t.kind === 'immediate') s.target = { name: 'recovery_target', value: 'immediate' };
  else if (t.kind === 'time') s.target = { name: 'recovery_target_time', value: t.text };
  else if (t.kind === 'xid') s.target = { name: 'recovery_target_xid', value: String(t.xid) };
  else if (t.kind === 'lsn') s.target = { name: 'recovery_target_lsn', value: formatLsn(t.lsn) };
  else if (t.kind === 'name') s.target = { name: 'recovery_target_name', value: t.name };
  if (req.target.exclusive) s.inclusive = false;
  if (t.kind !== 'end') s.action = req.target.action;
  const extra = req.recoveryOptions ?? [];
  s.extra = extra;
  const auto = join(pgData, 'postgresql.auto.conf');
  const old = readOwnTargetFile(auto) ?? '';
  const autoText = withRecoverySettings(old, recoverySettingsBlock(s), req.standby, extra.map((o) => o.name));
  // A cluster initialised with group access (initdb -g: its directory 0750) keeps its files 0640.
  const fileMode = (statSync(pgData).mode & 0o050) === 0o050 ? 0o640 : 0o600;
  writeFileAtomicSync(auto, autoText, sync, fileMode);
  // Recovery settings in postgresql.conf would still apply (a second target is a FATAL error, an
  // old one stops recovery early): they are commented out there too.
  const conf = join(pgData, 'postgresql.conf');
  const confText = readOwnTargetFile(conf);
  let cleaned = confText;
  if (confText !== null) {
    cleaned = withoutRecoverySettings(confText, req.standby);
    if (cleaned !== confText) writeFileAtomicSync(conf, cleaned, sync, fileMode);
  }
  if (req.standby && !setsSetting(autoText, 'primary_conninfo') && !(cleaned !== null && setsSetting(cleaned, 'primary_conninfo'))) {
    req.log("restore: the standby has no primary_conninfo: it will replay WAL from the archive only; to stream from its primary, restore with --recovery-option primary_conninfo='host=... user=...'");
  }
  // A slot the backup's source streams through (a backup taken from a standby) is not this
  // standby's: said, since two standbys cannot share one, and one taking it over moves the WAL it holds.
  const slot = req.standby && !extra.some((o) => o.name === 'primary_slot_name') ? (settingValue(autoText, 'primary_slot_name') ?? (cleaned !== null ? settingValue(cleaned, 'primary_slot_name') : undefined)) : undefined;
  if (slot) {
    req.log(`restore: the standby keeps primary_slot_name '${slot}' from the backup's configuration: while another server (the one the backup was taken from) streams through that slot this one cannot, and if it takes the slot over, the other loses the WAL the slot kept for it; give --recovery-option primary_slot_name=NAME for a slot of its own (or primary_slot_name='' for none)`);
  }
  // One signal file: a backup taken from a standby holds standby.signal.
  rmSync(join(pgData, req.standby ? RECOVERY_SIGNAL : STANDBY_SIGNAL_FILE), { force: true });
  writeFileAtomicSync(join(pgData, req.standby ? STANDBY_SIGNAL_FILE : RECOVERY_SIGNAL), '', sync, fileMode);
}

