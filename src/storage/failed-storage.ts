// The storage of a repository that could not be opened (its S3 CA file
// unreadable, its driver failing to load): every operation fails with the
// error the opening gave. Commands that work on several repositories handle a
// failure per repository, on use: one repository that cannot even be opened
// must not stop archive-push or archive-get from reaching the others.

import type { Storage, StorageFeatures } from './storage.js';

export function failedStorage(location: string, error: Error): Storage {
  const fail = (): Promise<never> => Promise.reject(error);
  const features: StorageFeatures = { move: false, pathSync: false, directories: false, localPaths: false, conditionalCreate: true, remote: true };
  return {
    features,
    location,
    info: fail,
    list: fail,
    read: fail,
    write: fail,
    remove: fail,
    removeMany: fail,
  };
}
