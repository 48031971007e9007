// PostgreSQL's compression specifications (15+): "N", or a comma-separated list
// of keyword[=value] (level, workers, long), parsed and checked with the rules
// and the words of PostgreSQL's src/common/compression.c, so that a script
// matching pg_basebackup's messages matches ours. No I/O.

export type SpecAlgorithm = 'none' | 'gzip' | 'lz4' | 'zstd';

export interface CompressSpec {
  algorithm: SpecAlgorithm;
  /** The level given, unless it is the algorithm's default (then the codec's default applies). */
  level?: number;
  workers?: number;
  long?: boolean;
}

/** Levels as PostgreSQL checks them: outside [min, max], only the default is accepted. */
const LEVELS: Record<SpecAlgorithm, { min: number; max: number; default: number }> = {
  none: { min: 0, max: 0, default: 0 },
  gzip: { min: 1, max: 9, default: -1 }, // Z_DEFAULT_COMPRESSION
  lz4: { min: 1, max: 12, default: 0 }, // 0: fast mode
  zstd: { min: -131072, max: 22, default: 3 }, // ZSTD_minCLevel(), ZSTD_maxCLevel(), ZSTD_CLEVEL_DEFAULT
};

export function isSpecAlgorithm(name: string): name is SpecAlgorithm {
  return Object.hasOwn(LEVELS, name);
}

/** strtol() of a whole string, as PostgreSQL uses it: an integer, or null. */
function wholeInteger(text: string): number | null {
  return /^\s*[+-]?\d+$/.test(text) ? Number(text) : null;
}

/**
 * Parses and validates `detail` (null: none given) for `algorithm`. Returns the
 * specification, or PostgreSQL's error text (to follow "invalid compression
 * specification: ").
 */
export function parseCompressSpec(algorithm: SpecAlgorithm, detail: string | null): CompressSpec | string {
  const spec: CompressSpec = { algorithm };
  const error = (detail === null ? null : parseDetail(spec, detail)) ?? validate(spec);
  if (error !== null) return error;
  if (spec.level === LEVELS[algorithm].default) delete spec.level;
  return spec;
}

function parseDetail(spec: CompressSpec, detail: string): string | null {
  const bare = wholeInteger(detail);
  if (bare !== null) {
    spec.level = bare;
    return null;
  }
  for (const item of detail.split(',')) {
    const eq = item.indexOf('=');
    const keyword = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? null : item.slice(eq + 1);
    if (keyword === '') return 'found empty string where a compression option was expected';
    if (keyword === 'level') {
      const n = integerValue(keyword, value);
      if (typeof n === 'string') return n;
      spec.level = n;
    } else if (keyword === 'workers') {
      const n = integerValue(keyword, value);
      if (typeof n === 'string') return n;
      spec.workers = n;
    } else if (keyword === 'long') {
      const b = booleanValue(keyword, value);
      if (typeof b === 'string') return b;
      spec.long = b;
    } else {
      return `unrecognized compression option: "${keyword}"`;
    }
  }
  return null;
}

function integerValue(keyword: string, value: string | null): number | string {
  if (value === null) return `compression option "${keyword}" requires a value`;
  return wholeInteger(value) ?? `value for compression option "${keyword}" must be an integer`;
}

function booleanValue(keyword: string, value: string | null): boolean | string {
  if (value === null) return true;
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'on' || v === '1') return true;
  if (v === 'no' || v === 'off' || v === '0') return false;
  return `value for compression option "${keyword}" must be a Boolean value`;
}

function validate(spec: CompressSpec): string | null {
  const { algorithm } = spec;
  const range = LEVELS[algorithm];
  const level = spec.level ?? range.default;
  if (algorithm === 'none' && level !== 0) return `compression algorithm "none" does not accept a compression level`;
  if ((level < range.min || level > range.max) && level !== range.default) {
    return `compression algorithm "${algorithm}" expects a compression level between ${range.min} and ${range.max} (default at ${range.default})`;
  }
  if (spec.workers !== undefined && algorithm !== 'zstd') return `compression algorithm "${algorithm}" does not accept a worker count`;
  if (spec.long !== undefined && algorithm !== 'zstd') return `compression algorithm "${algorithm}" does not support long-distance mode`;
  return null;
}
