// What -R writes so a backup starts as a standby (PostgreSQL 12+): an empty
// standby.signal and primary_conninfo / primary_slot_name appended to
// postgresql.auto.conf, as pg_basebackup does.

import { effectiveUser, formatConninfo } from '../protocol/conninfo.js';
import type { ConnectionSettings } from '../protocol/conninfo.js';
import { quoteSetting, withoutRestoreTargets } from './restore-settings.js';

export const STANDBY_SIGNAL = 'standby.signal';
export const AUTO_CONF = 'postgresql.auto.conf';

export function primaryConninfo(s: ConnectionSettings, dbname?: string): string {
  return formatConninfo({
    // The role this backup connected as, given or not (libpq's PQconninfo reports it): else the
    // standby's walreceiver would connect as the server's own OS user.
    user: effectiveUser(s),
    password: s.password,
    host: s.host,
    hostaddr: s.hostaddr,
    port: s.port,
    sslmode: s.sslmode,
    sslrootcert: s.sslrootcert,
    sslcert: s.sslcert,
    sslkey: s.sslkey,
    application_name: s.application_name,
    connect_timeout: s.connect_timeout,
    ...s.extra,
    // Last, as pg_basebackup 17+ writes it.
    ...(dbname !== undefined ? { dbname } : {}),
  });
}

export function recoverySettingsText(s: ConnectionSettings, slot: string | undefined, dbname?: string): string {
  let text = `# recovery settings written by pgpitr basebackup -R\nprimary_conninfo = ${quoteSetting(primaryConninfo(s, dbname))}\n`;
  if (slot) text += `primary_slot_name = ${quoteSetting(slot)}\n`;
  return text;
}

/**
 * The source's postgresql.auto.conf with -R's settings after it, and without what a pgpitr restore
 * of the source left there (its recovery target would make the new standby stop and promote).
 */
export function appendToAutoConf(old: Buffer, addition: string): Buffer {
  const text = old.toString('utf8');
  const kept = text.includes('recovery_target') ? Buffer.from(withoutRestoreTargets(text)) : old;
  const sep = kept.length > 0 && kept[kept.length - 1] !== 0x0a ? '\n' : '';
  return Buffer.concat([kept, Buffer.from(sep + addition)]);
}
