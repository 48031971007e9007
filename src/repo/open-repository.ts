// Opens a repository from its resolved settings (repo-settings.ts): the one
// place that picks a Storage driver. The S3 driver, and with it the AWS SDK, is
// loaded only when a repository of type s3 is opened, so that the commands on a
// posix repository (archive_command starts one per segment) start as fast as
// before.

import { PosixStorage } from '../storage/posix/posix-storage.js';
import { usageError } from '../common/errors.js';
import { repositoryOn } from './repository.js';
import { describeRepository, pickRepository } from './repo-settings.js';
import type { RepoSettings } from './repo-settings.js';
import type { Repository } from './repository.js';
import type { NumberedRepository } from './numbered-repository.js';
import type { Storage } from '../storage/storage.js';

export async function openRepository(settings: RepoSettings): Promise<Repository> {
  if (settings.cipher.type !== 'none') {
    throw usageError(`repo${settings.index}-cipher-type ${settings.cipher.type}: encryption is not available in this version of pgpitr`, `remove repo${settings.index}-cipher-type`);
  }
  let storage: Storage;
  if (settings.type === 'posix') storage = new PosixStorage(settings.path);
  else {
    const { openS3Storage } = await import('../storage/s3/s3-storage.js');
    storage = await openS3Storage(settings.s3!);
  }
  return repositoryOn(storage, describeRepository(settings));
}

/** The repository a command that works on one uses: --repo N, else the lowest N. */
export function openChosenRepository(repos: RepoSettings[], selected: number | undefined): Promise<Repository> {
  return openRepository(pickRepository(repos, selected));
}

/** Every configured repository, in the order of N (the commands that work on all of them). */
export async function openRepositories(repos: RepoSettings[]): Promise<NumberedRepository[]> {
  if (repos.length === 0) throw usageError('no repository given', 'use --repo PATH, PGPITR_REPO, repo= or repoN-path in the configuration file');
  return Promise.all(repos.map(async (s) => ({ index: s.index, repo: await openRepository(s) })));
}
