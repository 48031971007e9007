// Opens the repository a command was given: the one place that picks a Storage
// driver for it (posix today: --repo is an absolute directory; an object-storage
// driver would be chosen here from the same options).

import { PosixStorage } from '../storage/posix/posix-storage.js';
import { repositoryOn } from './repository.js';
import type { Repository } from './repository.js';

export function openRepository(path: string): Repository {
  return repositoryOn(new PosixStorage(path), path);
}
