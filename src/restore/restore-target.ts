// What a restore aims at, as the user said it: PostgreSQL's recovery_target_*
// family, checked and typed once, here, so that the plan and the settings
// written for the server read the same thing.

import { isNamedZone, namedZoneOffset } from './zone-offset.js';
import { usageError } from '../common/errors.js';
import { parseLsn } from '../postgres/lsn.js';
import type { Lsn } from '../postgres/lsn.js';

export type RecoveryTarget =
  | { kind: 'end' } // no target: replay the whole archive
  | { kind: 'immediate' } // stop as soon as the backup is consistent
  | { kind: 'time'; text: string; ms: number }
  | { kind: 'xid'; xid: bigint }
  | { kind: 'lsn'; lsn: Lsn; text: string }
  | { kind: 'name'; name: string };

export type TargetTimeline = 'latest' | 'current' | number;
export type TargetAction = 'pause' | 'promote' | 'shutdown';

export interface TargetOptions {
  target: RecoveryTarget;
  /** recovery_target_inclusive = off */
  exclusive: boolean;
  timeline: TargetTimeline;
  action: TargetAction;
}

export interface TargetFlags {
  time?: string | undefined;
  xid?: string | undefined;
  lsn?: string | undefined;
  name?: string | undefined;
  immediate?: boolean | undefined;
  exclusive?: boolean | undefined;
  timeline?: string | undefined;
  action?: string | undefined;
}

export function parseTargetOptions(f: TargetFlags): TargetOptions {
  const given = (['time', 'xid', 'lsn', 'name'] as const).filter((k) => f[k] !== undefined);
  if (f.immediate) given.push('immediate' as never);
  if (given.length > 1) {
    throw usageError(`only one recovery target may be given, got ${given.map((g) => `--target-${g}`).join(', ')}`);
  }
  let target: RecoveryTarget = { kind: 'end' };
  if (f.immediate) target = { kind: 'immediate' };
  else if (f.time !== undefined) target = { kind: 'time', text: recoveryTargetTimeText(f.time), ms: parseTargetTime(f.time) };
  else if (f.xid !== undefined) {
    if (!/^\d+$/.test(f.xid)) throw usageError(`invalid --target-xid "${f.xid}"`, 'give a transaction ID, a positive integer (as pg_current_xact_id() or txid_current() print it)');
    // 0 to 2 are not transactions (invalid, bootstrap, frozen): none ever commits, recovery never stops there.
    if (BigInt(f.xid) % 2n ** 32n < 3n) throw usageError(`invalid --target-xid "${f.xid}": transaction IDs 0 to 2 (of each epoch) are reserved, no transaction has one`, 'give the ID of a transaction (pg_current_xact_id() in it, or the xid pg_waldump shows on its COMMIT record)');
    target = { kind: 'xid', xid: BigInt(f.xid) };
  } else if (f.lsn !== undefined) {
    let lsn: Lsn;
    try {
      lsn = parseLsn(f.lsn);
    } catch {
      throw usageError(`invalid --target-lsn "${f.lsn}"`, 'give a WAL position as X/X in hexadecimal, as pg_current_wal_lsn() prints it');
    }
    target = { kind: 'lsn', lsn, text: f.lsn };
  } else if (f.name !== undefined) {
    if (f.name === '') throw usageError('--target-name is empty', 'give the name passed to pg_create_restore_point()');
    // Escaped, it would come back raw the first time ALTER SYSTEM rewrites postgresql.auto.conf, and the server would not start.
    if (/[\r\n]/.test(f.name)) throw usageError('--target-name holds a line break, which cannot be kept in postgresql.auto.conf', 'recover to the restore point\'s LSN or time instead (--target-lsn, --target-time)');
    // The server refuses a longer recovery_target_name at start (MAXFNAMELEN), once everything is written; pg_create_restore_point() refuses to make one.
    if (Buffer.byteLength(f.name) > 63) throw usageError(`--target-name is ${Buffer.byteLength(f.name)} bytes long: a restore point's name is at most 63 bytes`, 'give the name passed to pg_create_restore_point()');
    target = { kind: 'name', name: f.name };
  }
  if (f.exclusive && (target.kind === 'end' || target.kind === 'immediate' || target.kind === 'name')) {
    throw usageError('--target-exclusive needs --target-time, --target-xid or --target-lsn');
  }
  let timeline: TargetTimeline = 'latest';
  if (f.timeline !== undefined) {
    if (f.timeline === 'latest' || f.timeline === 'current') timeline = f.timeline;
    else if (/^\d+$/.test(f.timeline) && Number(f.timeline) >= 1) timeline = Number(f.timeline);
    else throw usageError(`invalid --target-timeline "${f.timeline}"`, 'give latest, current or a timeline number');
  }
  const action = f.action ?? 'pause';
  if (action !== 'pause' && action !== 'promote' && action !== 'shutdown') {
    throw usageError(`invalid --target-action "${action}"`, 'give pause, promote or shutdown');
  }
  if (f.action !== undefined && target.kind === 'end') {
    throw usageError('--target-action needs a recovery target', 'without a target, recovery replays the whole archive and the server is promoted');
  }
  return { target, exclusive: f.exclusive ?? false, timeline, action };
}

/**
 * What restore writes as recovery_target_time: the time as given (its fraction of a second to
 * the digit), with a space before the time and a numeric zone: PostgreSQL reads the setting at
 * start, before its time zone abbreviations are loaded, and refuses "Z" then.
 */
export function recoveryTargetTimeText(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\S+?)\s*(Z|UTC)$/i.exec(text.trim());
  if (m) return `${m[1]} ${m[2]}+00`;
  // A named zone: the offset it has then, written as a number (the server's zone data may differ).
  const named = NAMED_ZONE_TIME.exec(text.trim());
  if (named && isNamedZone(named[3]!)) {
    const offset = namedZoneOffset(named[3]!, wallClock(named[1]!, named[2]!), text);
    // Whole seconds (zone rules before standard time had them: local mean time), as PostgreSQL reads ±HH:MM:SS.
    const seconds = Math.round(Math.abs(offset) / 1000);
    const two = (n: number) => String(n).padStart(2, '0');
    return `${named[1]} ${named[2]}${offset < 0 ? '-' : '+'}${two(Math.floor(seconds / 3600))}:${two(Math.floor(seconds / 60) % 60)}${seconds % 60 !== 0 ? `:${two(seconds % 60)}` : ''}`;
  }
  return text.trim().replace(/^(\d{4}-\d{2}-\d{2})T/, '$1 ');
}

/** A date, a time and a zone named (Area/Location) after a space. */
const NAMED_ZONE_TIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) +(\S+)$/;

/** The wall-clock fields of a date and time, read as if UTC, to the whole second. */
function wallClock(date: string, time: string): number {
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const [hour, minute, second] = time.split(':').map(Number) as [number, number, number | undefined];
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, Math.floor(second ?? 0)));
  d.setUTCFullYear(year, month - 1, day); // Date.UTC reads years 0 to 99 as 1900 to 1999
  return d.getTime();
}

/**
 * The target time in microseconds since 1970, as the server compares it with commit times: the
 * milliseconds `ms` parseTargetTime gave, with the digits of the fraction past them that `text`
 * carries (rounded to the microsecond, as timestamptz input does).
 */
export function targetTimeMicros(text: string, ms: number): bigint {
  const fraction = /:\d{2}\.(\d+)/.exec(text)?.[1];
  const seconds = BigInt(Math.floor(ms / 1000));
  if (fraction === undefined) return BigInt(ms) * 1000n;
  return seconds * 1_000_000n + BigInt(Math.round(Number(`0.${fraction}`) * 1e6));
}

/**
 * A time as PostgreSQL's timestamptz input reads it, for choosing a backup; the
 * text itself goes to recovery_target_time as recoveryTargetTimeText writes it. A time without a zone is
 * refused: the server would read it in its own TimeZone, which pgpitr cannot
 * know before the server runs, and a wrong guess picks a wrong backup.
 */
export function parseTargetTime(text: string): number {
  const t = text.trim();
  const named = NAMED_ZONE_TIME.exec(t);
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) *(Z|UTC|[+-]\d{1,2}(?::?\d{2}(?::00)?)?)$/i.exec(t) ?? (named && isNamedZone(named[3]!) ? named : null);
  if (!m) {
    throw usageError(`invalid --target-time "${text}"`, 'give a time with its zone, as PostgreSQL prints timestamptz, e.g. "2026-12-01 11:45:00+00" or "2026-12-01 11:45:00.123456+01:00", or with a zone name, e.g. "2026-12-01 06:45:00 America/New_York" (a time without a zone is refused: the server would read it in its own TimeZone setting)');
  }
  const [year, month, day] = m[1]!.split('-').map(Number) as [number, number, number];
  const [hour, minute, second] = m[2]!.split(':').map(Number) as [number, number, number | undefined];
  // Date.parse rolls 2026-02-30 over to March 2; the server refuses it at start.
  const midnightAfter = hour === 24 && minute === 0 && (second ?? 0) === 0; // PostgreSQL reads 24:00:00 as the next midnight
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate() || (hour > 23 && !midnightAfter) || minute > 59 || (second ?? 0) >= 60) {
    throw usageError(`invalid --target-time "${text}"`, 'give a valid date and time with its zone');
  }
  if (isNamedZone(m[3]!)) {
    const wall = wallClock(m[1]!, m[2]!);
    const fraction = m[2]!.split(':')[2]?.split('.')[1];
    return wall - namedZoneOffset(m[3]!, wall, text) + (fraction !== undefined ? Math.floor(Number(`0.${fraction}`) * 1000) : 0);
  }
  let zone = m[3]!.toUpperCase();
  if (zone === 'UTC') zone = 'Z';
  else if (/^[+-]\d$/.test(zone)) zone = `${zone[0]}0${zone[1]}:00`; // -8, as PostgreSQL reads it
  else if (/^[+-]\d{2}:\d{2}:00$/.test(zone)) zone = zone.slice(0, 6); // +05:30:00
  else if (/^[+-]\d{2}$/.test(zone)) zone += ':00';
  else if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${m[1]}T${m[2]}${zone}`);
  if (Number.isNaN(ms)) throw usageError(`invalid --target-time "${text}"`, 'give a valid date and time with its zone');
  return ms;
}
