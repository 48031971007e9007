// Which servers pgpitr supports, and which features need which version.

import { PgpitrError } from '../common/errors.js';

export const MIN_SERVER_VERSION = 130000;
export const MAX_SERVER_MAJOR = 18;

export function majorOf(versionNum: number): number {
  return Math.floor(versionNum / 10000);
}

interface VersionSensitive {
  compression: { location: 'client' | 'server' } | null;
  target: { kind: string };
}

export function supportedVersionOrThrow(versionNum: number, opts: VersionSensitive): void {
  const major = majorOf(versionNum);
  if (versionNum < MIN_SERVER_VERSION || major > MAX_SERVER_MAJOR) {
    throw new PgpitrError('ERR_UNSUPPORTED', `incompatible server version ${major}`, {
      hint: `pgpitr supports PostgreSQL 13 to ${MAX_SERVER_MAJOR}`,
    });
  }
  if (major < 15 && opts.compression?.location === 'server') {
    throw new PgpitrError('ERR_UNSUPPORTED', `server does not support server-side compression (PostgreSQL ${major})`, {
      hint: 'server-side compression needs PostgreSQL 15 or later; use client-side compression (-Z client-gzip, -z)',
    });
  }
  if (major < 15 && opts.target.kind !== 'directory' && opts.target.kind !== 'stdout' && opts.target.kind !== 'repository') {
    throw new PgpitrError('ERR_UNSUPPORTED', `server does not support backup targets (PostgreSQL ${major})`, {
      hint: 'backup targets (-t) need PostgreSQL 15 or later',
    });
  }
}
