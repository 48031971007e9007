// The one check every storage path goes through before a driver sees it: a
// relative, '/'-separated path with no empty, "." or ".." component and no NUL,
// so that nothing read from a manifest or a listing can reach outside the
// storage's root. The root itself is "" (or ".").

import { PgpitrError } from '../common/errors.js';
import { relativePathProblem } from '../common/relative-path.js';

export function checkStoragePath(path: string, location: string): string {
  if (path === '' || path === '.') return '';
  const problem = relativePathProblem(path);
  if (problem !== null) {
    throw new PgpitrError('ERR_UNSAFE_PATH', `unsafe storage path "${path}" in ${location}: ${problem}`, {
      hint: 'a repository path must be relative, without "..", "." or empty components; the repository or its manifest may be damaged',
    });
  }
  return path;
}

/** Joins relative storage path parts with '/'. */
export function storageJoin(...parts: string[]): string {
  return parts.filter((p) => p !== '' && p !== '.').join('/');
}

/**
 * An object's name for messages: `path` under the storage's location, inside the quotes of a
 * quoted location (an object store's "s3://bucket/prefix" at endpoint, a posix storage's "/dir"),
 * so that it reads as the object's key or the file's path, quoted whole.
 */
export function objectAt(location: string, path: string): string {
  const m = /^"([^"]*)"( at .*)?$/.exec(location);
  return m ? `"${storageJoin(m[1]!, path)}"${m[2] ?? ''}` : storageJoin(location, path);
}

/** The parent of a storage path ('' for a top-level name). */
export function storageParent(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
