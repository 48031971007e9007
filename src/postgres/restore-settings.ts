// The recovery settings restore writes for PostgreSQL 13 to 18 (all read them
// from the configuration, with recovery.signal or standby.signal): a block in
// postgresql.auto.conf between two marker lines, so that a later restore
// (--delta over the same directory) replaces it instead of piling up settings,
// and recovery settings an earlier tool left in that file are commented out
// rather than left to override ours.

export const RECOVERY_SIGNAL = 'recovery.signal';
export const STANDBY_SIGNAL_FILE = 'standby.signal';

const BEGIN = '# --- recovery settings written by pgpitr restore: begin ---';
const END = '# --- recovery settings written by pgpitr restore: end ---';

/** Settings PostgreSQL reads for recovery; any of them left outside our block would change what recovery does. */
const RECOVERY_GUCS = new Set([
  'restore_command',
  'recovery_end_command',
  'archive_cleanup_command',
  'recovery_target',
  'recovery_target_time',
  'recovery_target_xid',
  'recovery_target_lsn',
  'recovery_target_name',
  'recovery_target_inclusive',
  'recovery_target_timeline',
  'recovery_target_action',
  'recovery_min_apply_delay',
  'primary_conninfo',
  'primary_slot_name',
]);

/** What a standby keeps of its configuration: how it reaches its primary and applies WAL. */
const STANDBY_KEEPS = new Set(['primary_conninfo', 'primary_slot_name', 'recovery_min_apply_delay', 'archive_cleanup_command']);

export interface RecoverySettings {
  restoreCommand: string;
  target?: { name: 'recovery_target' | 'recovery_target_time' | 'recovery_target_xid' | 'recovery_target_lsn' | 'recovery_target_name'; value: string };
  inclusive?: boolean;
  timeline: string;
  action?: 'pause' | 'promote' | 'shutdown';
  /** A standby: keeps its apply delay and archive clean-up from its configuration. */
  standby?: boolean;
  /** The DBA's own settings (--recovery-option, --archive-mode off), after ours; restore_command among them replaces ours. */
  extra?: readonly { name: string; value: string }[];
}

export function quoteSetting(value: string): string {
  // A line break cannot stand in a quoted value (the server refuses the file at start): written as
  // the escapes PostgreSQL reads back (GUC_scanstr), as backslashes are.
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\n/g, '\\n').replace(/\r/g, '\\r')}'`;
}

/** The recovery targets: at most one may be set, and only the one restore chose is. */
const TARGET_GUCS = ['recovery_target', 'recovery_target_lsn', 'recovery_target_name', 'recovery_target_time', 'recovery_target_xid'] as const;

/**
 * The block. Every recovery setting that changes where recovery ends or what it runs is given a
 * value here, ours or its default, not only the ones restore uses: a setting left in a file
 * restore does not rewrite (a postgresql.conf outside the data directory, as Debian keeps it, or a
 * file it includes) would otherwise apply, and a stale target stops recovery early. postgresql.auto.conf
 * is read last and PostgreSQL applies only the last value of a setting, so these win; the targets
 * restore does not use are emptied before the one it uses (PostgreSQL refuses a second target in
 * the order it applies them). A standby keeps its apply delay and archive clean-up from its
 * configuration. The DBA's own --recovery-option settings come last and replace the defaults.
 */
export function recoverySettingsBlock(s: RecoverySettings): string {
  const extra = s.extra ?? [];
  const given = new Set(extra.map((o) => o.name));
  const restoreCommand = extra.find((o) => o.name === 'restore_command')?.value ?? s.restoreCommand;
  const lines = [BEGIN, `restore_command = ${quoteSetting(restoreCommand)}`];
  for (const name of TARGET_GUCS) if (name !== s.target?.name) lines.push(`${name} = ''`);
  if (s.target) lines.push(`${s.target.name} = ${quoteSetting(s.target.value)}`);
  lines.push(`recovery_target_inclusive = '${s.inclusive === false ? 'off' : 'on'}'`);
  lines.push(`recovery_target_timeline = ${quoteSetting(s.timeline)}`);
  lines.push(`recovery_target_action = ${quoteSetting(s.action ?? 'pause')}`);
  const defaults: [string, string][] = s.standby ? [['recovery_end_command', '']] : [['recovery_end_command', ''], ['archive_cleanup_command', ''], ['recovery_min_apply_delay', '0']];
  for (const [name, value] of defaults) if (!given.has(name)) lines.push(`${name} = ${quoteSetting(value)}`);
  for (const o of extra) if (o.name !== 'restore_command') lines.push(`${o.name} = ${quoteSetting(o.value)}`);
  lines.push(END);
  return lines.join('\n') + '\n';
}

/**
 * postgresql.auto.conf with our block in place of an earlier one, and any other
 * recovery setting commented out (kept visible, so a DBA sees what was there);
 * a standby keeps its primary_conninfo and primary_slot_name, unless the block
 * sets them (`overridden`: what a DBA gave with --recovery-option). Other
 * settings outside the block are left as they are: the block comes last, so
 * its lines win.
 */
export function withRecoverySettings(autoConf: string, block: string, standby = false, overridden: readonly string[] = []): string {
  const out = withoutRecoverySettings(autoConf, standby, overridden).split('\n');
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return (out.length > 0 ? out.join('\n') + '\n' : '') + block;
}

/** A configuration file with our block removed and every other recovery setting commented out (but what a standby keeps and the block does not set). */
export function withoutRecoverySettings(text: string, standby = false, overridden: readonly string[] = []): string {
  const out: string[] = [];
  let inside = false;
  for (const line of text.split('\n')) {
    if (line === BEGIN) {
      inside = true;
      continue;
    }
    if (line === END) {
      inside = false;
      continue;
    }
    if (inside) continue;
    const name = settingName(line);
    const keep = standby && name !== undefined && STANDBY_KEEPS.has(name) && !overridden.includes(name);
    out.push(name !== undefined && RECOVERY_GUCS.has(name) && !keep ? `# disabled by pgpitr restore: ${line}` : line);
  }
  return out.join('\n');
}

/**
 * What a copy of a restored cluster must not inherit (basebackup -R): the recovery target a
 * restore wrote, which PostgreSQL keeps reading after the promotion it asked for (a standby cloned
 * from that server would stop at the old target and promote itself: repmgr#793 reports it after
 * pgBackRest). Every recovery_target* line is commented out, inside pgpitr's block or not; the
 * rest (restore_command, the DBA's --recovery-option settings) stays, as pg_basebackup keeps it.
 */
export function withoutRestoreTargets(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const name = settingName(line);
      return name !== undefined && name.startsWith('recovery_target') ? `# disabled by pgpitr basebackup -R: ${line}` : line;
    })
    .join('\n');
}

/** The setting a configuration file's line sets (lower case), or undefined (a comment, a blank line). */
function settingName(line: string): string | undefined {
  return /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?/.exec(line)?.[1]?.toLowerCase();
}

/**
 * The value the last line setting `name` gives (quotes taken off, '' and \\ unescaped), or
 * undefined when no line sets it. Enough for the settings restore reads back (a name, a slot).
 */
export function settingValue(text: string, name: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split('\n')) {
    if (settingName(line) !== name) continue;
    const raw = line.replace(/^\s*[A-Za-z_][A-Za-z0-9_.]*\s*=?\s*/, '');
    const quoted = /^'((?:[^'\\]|''|\\.)*)'/.exec(raw);
    value = quoted ? quoted[1]!.replace(/''/g, "'").replace(/\\(.)/g, '$1') : (/^[^\s#]*/.exec(raw)?.[0] ?? '');
  }
  return value;
}

/** Whether a configuration file sets `name` (on a line of its own, not commented out). */
export function setsSetting(text: string, name: string): boolean {
  return text.split('\n').some((line) => settingName(line) === name);
}
