// What -R writes so a backup starts as a standby (PostgreSQL 12+): an empty
// standby.signal and primary_conninfo / primary_slot_name appended to
// postgresql.auto.conf, as pg_basebackup does.

import { formatConninfo } from '../protocol/conninfo.js';
import type { ConnectionSettings } from '../protocol/conninfo.js';

export const STANDBY_SIGNAL = 'standby.signal';
export const AUTO_CONF = 'postgresql.auto.conf';

export function primaryConninfo(s: ConnectionSettings): string {
  return formatConninfo({
    user: s.user,
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
  });
}

function quoteGuc(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export function recoverySettingsText(s: ConnectionSettings, slot: string | undefined): string {
  let text = `# recovery settings written by pgpitr basebackup -R\nprimary_conninfo = ${quoteGuc(primaryConninfo(s))}\n`;
  if (slot) text += `primary_slot_name = ${quoteGuc(slot)}\n`;
  return text;
}

export function appendToAutoConf(old: Buffer, addition: string): Buffer {
  const sep = old.length > 0 && old[old.length - 1] !== 0x0a ? '\n' : '';
  return Buffer.concat([old, Buffer.from(sep + addition)]);
}
