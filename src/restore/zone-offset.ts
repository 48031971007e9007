// A wall-clock time in a named time zone (an IANA name with its area, "America/New_York"), as
// --target-time may give it: the instant it names, from the zone rules Node's ICU carries. Only
// names with a slash are taken: an abbreviation ("CET", "EST") means one fixed offset to
// PostgreSQL and a zone with daylight-saving time to ICU. A time that does not exist in the zone
// (skipped by a change to daylight-saving time) or exists twice (the hour repeated by the change
// back) is refused: which instant was meant cannot be told, and a guess could pick the wrong
// backup or stop recovery an hour off.

import { usageError } from '../common/errors.js';

const formats = new Map<string, Intl.DateTimeFormat>();

function formatIn(zone: string): Intl.DateTimeFormat | null {
  let f = formats.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    } catch {
      return null; // RangeError: not a zone ICU knows
    }
    formats.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC at instant `ms` (whole seconds), in ms. */
function offsetAt(f: Intl.DateTimeFormat, ms: number): number {
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)])) as Record<string, number>;
  const wall = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return wall - Math.floor(ms / 1000) * 1000;
}

/** Whether `zone` looks like an IANA zone name with its area (Area/Location). */
export function isNamedZone(zone: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)+$/.test(zone);
}

/**
 * The UTC offset (ms) that wall time `wallMs` (its fields read as if UTC, whole seconds) has in
 * `zone`; a usage error naming `text` for an unknown zone, or a time that the zone skips or repeats.
 */
export function namedZoneOffset(zone: string, wallMs: number, text: string): number {
  const f = formatIn(zone);
  if (f === null) throw usageError(`invalid --target-time "${text}": unknown time zone "${zone}"`, 'give the zone as an IANA name (e.g. "Europe/Paris") or a numeric offset (e.g. "+01:00")');
  const day = 86_400_000;
  const candidates = [...new Set([offsetAt(f, wallMs - day), offsetAt(f, wallMs + day), offsetAt(f, wallMs)])];
  const valid = [...new Set(candidates.filter((o) => offsetAt(f, wallMs - o) === o))];
  if (valid.length !== 1) {
    throw usageError(`invalid --target-time "${text}": that time ${valid.length === 0 ? 'does not exist' : 'exists twice'} in ${zone} (a daylight-saving change)`, 'give the time with a numeric offset instead (e.g. "-04:00" or "-05:00")');
  }
  return valid[0]!;
}
