// What a DBA adds to the settings restore writes: `--recovery-option KEY=VALUE`
// (primary_conninfo for a standby that streams from its primary,
// recovery_min_apply_delay, restore_command to fetch WAL another way, ...) and
// `--archive-mode off|preserve` (off: the restored cluster does not archive,
// so a copy made for inspection cannot push its own timeline into the
// production stanza). Keys are written as PostgreSQL names them, from either
// spelling (primary-conninfo or primary_conninfo, as pgBackRest accepts).
// The target settings are restore's own: they decide which backup and which
// WAL the plan checks, so they come from --target-* only.

import { usageError } from '../common/errors.js';

export interface RecoveryOption {
  name: string;
  value: string;
}

/** Settings restore derives from its --target-* options; a --recovery-option would bypass the plan's checks. */
const TARGET_SETTINGS: Record<string, string> = {
  recovery_target: '--target-immediate',
  recovery_target_time: '--target-time',
  recovery_target_xid: '--target-xid',
  recovery_target_lsn: '--target-lsn',
  recovery_target_name: '--target-name',
  recovery_target_inclusive: '--target-exclusive',
  recovery_target_timeline: '--target-timeline',
  recovery_target_action: '--target-action',
};

/** A setting's name: letters, digits and underscores, with one dot for an extension's (auto_explain.log_min_duration). */
const NAME = /^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/;

export function parseRecoveryOption(text: string): RecoveryOption {
  const eq = text.indexOf('=');
  if (eq <= 0) throw usageError(`--recovery-option "${text}" is not KEY=VALUE`, 'give it as --recovery-option primary_conninfo=\'host=primary user=replicator\'');
  const name = text.slice(0, eq).trim().toLowerCase().replace(/-/g, '_');
  // Trimmed: PostgreSQL refuses ' off' for a boolean, and a configuration error stops the server at start.
  const value = text.slice(eq + 1).trim();
  if (!NAME.test(name)) throw usageError(`--recovery-option "${text}": "${text.slice(0, eq)}" is not a setting's name`, 'give the name of a PostgreSQL setting, such as primary_conninfo');
  const option = TARGET_SETTINGS[name];
  if (option !== undefined) throw usageError(`--recovery-option ${name}: restore writes it from its own options, after checking that the archive reaches the target`, `use ${option}`);
  if (/[\n\r\0]/.test(value)) throw usageError(`--recovery-option ${name}: the value holds a line break or a NUL byte, which a configuration file cannot hold`, 'give the value on one line');
  return { name, value };
}

/**
 * The settings added to restore's block, in the order given: each --recovery-option, then
 * archive_mode = off for --archive-mode off. A key given twice, or archive_mode given both ways,
 * is refused: which one the server would take is not something to guess.
 */
export function recoveryOptions(texts: readonly string[], archiveMode: string | undefined): RecoveryOption[] {
  const out = texts.map(parseRecoveryOption);
  const seen = new Set<string>();
  for (const o of out) {
    if (seen.has(o.name)) throw usageError(`--recovery-option ${o.name} is given twice`, 'give each setting once');
    seen.add(o.name);
  }
  if (archiveMode === undefined) return out;
  if (archiveMode !== 'off' && archiveMode !== 'preserve') throw usageError(`--archive-mode "${archiveMode}" is not off or preserve`, 'give --archive-mode off (the restored cluster does not archive) or preserve (the default: as the backup was)');
  if (seen.has('archive_mode')) throw usageError('archive_mode is given both by --archive-mode and by --recovery-option', 'give one of them');
  if (archiveMode === 'off') out.push({ name: 'archive_mode', value: 'off' });
  return out;
}
