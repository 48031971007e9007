// The one test of a relative path read from somewhere pgpitr does not trust
// (a repository listing, a backup manifest): what is wrong with it, or null.
// Callers wrap the answer in an error that names where the path came from.

export function relativePathProblem(path: string): string | null {
  if (path === '') return 'it is empty';
  if (path.includes('\0')) return 'it contains a NUL byte';
  if (path.startsWith('/')) return 'it is absolute';
  for (const part of path.split('/')) {
    if (part === '') return 'it has an empty component';
    if (part === '.' || part === '..') return `it has a "${part}" component`;
  }
  return null;
}
