// Paths read from a tar stream are never trusted: no absolute paths, no "..",
// nothing that resolves outside the directory we extract into.

import { isAbsolute, join, normalize, sep } from 'node:path';
import { PgpitrError } from '../../common/errors.js';

export function resolveInside(root: string, name: string, archive: string): string {
  const clean = name.replace(/\/+$/, '');
  if (clean === '' || isAbsolute(clean) || clean.split('/').some((part) => part === '..')) {
    throw new PgpitrError('ERR_UNSAFE_PATH', `refusing unsafe path "${name}" in archive "${archive}"`, {
      hint: 'the archive tries to write outside the target directory; it is not a PostgreSQL base backup stream',
    });
  }
  const full = normalize(join(root, clean));
  if (full !== root && !full.startsWith(root.endsWith(sep) ? root : root + sep)) {
    throw new PgpitrError('ERR_UNSAFE_PATH', `refusing unsafe path "${name}" in archive "${archive}"`);
  }
  return full;
}
