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

export interface OpenedRepository {
  index: number;
  settings: RepoSettings;
  repo: Repository;
}

/** The repositories a command that works on each uses: every one configured, or only --repo N. */
export async function openEachRepository(repos: RepoSettings[], selected: number | undefined): Promise<OpenedRepository[]> {
  const chosen = selected === undefined ? repos : [pickRepository(repos, selected)];
  const out: OpenedRepository[] = [];
  for (const settings of chosen) out.push({ index: settings.index, settings, repo: await openRepository(settings) });
  return out;
}
