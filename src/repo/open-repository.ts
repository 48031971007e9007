// Opens a repository from its resolved settings (repo-settings.ts): the one
// place that picks a Storage driver. The S3 driver, and with it the AWS SDK, is
// loaded only when a repository of type s3 is opened, so that the commands on a
// posix repository (archive_command starts one per segment) start as fast as
// before.

import { PosixStorage } from '../storage/posix/posix-storage.js';
import { PgpitrError, usageError } from '../common/errors.js';
import { readMarkerFile, usableMarkers } from './repo-marker.js';
import { REPO_MARKER, REPO_MARKER_COPY } from './layout.js';
import { isDeepStrictEqual } from 'node:util';
import type { CipherBlock } from './repo-cipher.js';
import type { KeyResolver } from '../storage/cipher/cipher-storage.js';
import { repositoryOn } from './repository.js';
import { describeRepository, pickRepository } from './repo-settings.js';
import type { RepoSettings } from './repo-settings.js';
import type { Repository } from './repository.js';
import type { NumberedRepository } from './numbered-repository.js';
import type { Storage } from '../storage/storage.js';
import { failedStorage } from '../storage/failed-storage.js';

export async function openRepository(settings: RepoSettings): Promise<Repository> {
  let storage: Storage;
  const location = describeRepository(settings);
  if (settings.type === 'posix') storage = new PosixStorage(settings.path);
  else {
    // What fails here (an unreadable storage-ca-file) fails this repository's operations, on use:
    // the commands that work on several repositories go on with the others.
    try {
      const { openS3Storage } = await import('../storage/s3/s3-storage.js');
      storage = await openS3Storage(settings.s3!);
    } catch (e) {
      // The driver failing to load (a damaged installation) too: a plain error, given its repository.
      storage = failedStorage(location, e instanceof PgpitrError ? e : new PgpitrError('ERR_INTERNAL', `the S3 driver could not be loaded for ${location}: ${(e as Error).message}`, { cause: e }));
    }
  }
  if (settings.cipher.type === 'none') return repositoryOn(storage, location);
  return openEncrypted(storage, location, `repo${settings.index}`, settings.cipher.pass);
}

/**
 * An encrypted repository: its key unwrapped from the marker with the passphrase, or, for a
 * repository not created yet, a new key that stanza-create records in the marker it writes. Read
 * on first use, not here: a repository out of reach (one of several) must not fail a command
 * before it is used, and is tried again on the next use.
 */
async function openEncrypted(storage: Storage, location: string, label: string, pass: string): Promise<Repository> {
  const { createCipherBlock, openCipherBlock, openCipherBlocks, dataKeyOf, repositoryKeys } = await import('./repo-cipher.js');
  const { CipherStorage } = await import('../storage/cipher/cipher-storage.js');
  let opened: Promise<{ block: CipherBlock; keys: KeyResolver }> | null = null;
  // The new key of a repository with no marker yet: kept only while there is none, the marker read
  // again on each use (a repository out of reach at first use, an unmounted path, would otherwise
  // leave a long-running process, a fetcher, with a key that opens nothing once it is back).
  let fresh: Promise<{ block: CipherBlock; key: Buffer }> | null = null;
  const open = (): Promise<{ block: CipherBlock; keys: KeyResolver }> => {
    opened ??= (async () => {
      // The marker alone when its key opens (one read: archive-push opens the repository per segment);
      // its copy too when the marker is missing, damaged, holds no key, or its key does not open.
      const marker = await readMarkerFile(storage, REPO_MARKER);
      const first = marker.state === 'sound' ? (marker.fields['cipher'] as CipherBlock | undefined) : undefined;
      let failed: unknown = null;
      if (first !== undefined) {
        try {
          const key = await openCipherBlock(first, pass, { label, location });
          return { block: first, keys: repositoryKeys(dataKeyOf(key, first.key_id)) };
        } catch (e) {
          failed = e;
        }
      }
      const markers = usableMarkers({ marker, copy: await readMarkerFile(storage, REPO_MARKER_COPY) }, location);
      let block: CipherBlock;
      let key: Buffer;
      if (markers.length === 0) {
        ({ block, key } = await (fresh ??= createCipherBlock(pass)));
        opened = null;
      } else {
        // A file whose JSON parses but holds no key (a damaged one, or an unencrypted repository's
        // put back by hand) is passed over when the other holds one: the key is never given up for it.
        const keyed = markers.filter((m) => m['cipher'] !== undefined);
        if (keyed.length === 0) {
          throw usageError(`repository ${location} is not encrypted, but ${label}-cipher-type is set`, `remove ${label}-cipher-type and ${label}-cipher-pass for it (an existing repository is not encrypted in place: create a new one for encrypted backups)`);
        }
        // The copy's key when the marker's did not open (a changed byte of the wrapped key); none other: the marker's error.
        const others = keyed.map((m) => m['cipher'] as CipherBlock).filter((b) => first === undefined || !isDeepStrictEqual(b, first));
        if (others.length === 0) throw failed;
        // Only the copy's key is tried here (the marker's failed above, or the marker does not serve): its error names it.
        ({ block, key } = await openCipherBlocks(others, pass, { label, location, file: REPO_MARKER_COPY }).catch((e: unknown) => Promise.reject(failed ?? e)));
      }
      return { block, keys: repositoryKeys(dataKeyOf(key, block.key_id)) };
    })().catch((e: unknown) => {
      opened = null;
      fresh = null;
      throw e;
    });
    return opened;
  };
  const cipherStorage = new CipherStorage(storage, async () => (await open()).keys);
  const opens = (b: unknown) =>
    openCipherBlock(b as CipherBlock, pass, { label, location }).then(
      () => true,
      () => false,
    );
  return repositoryOn(cipherStorage, location, { label, block: async () => (await open()).block, opens });
}

/** The repository a command that works on one uses: --repo N, else the lowest N. */
export function openChosenRepository(repos: RepoSettings[], selected: number | undefined): Promise<Repository> {
  return openRepository(pickRepository(repos, selected));
}

/** A repository opened with its settings (expire reads its retention from them). */
export interface OpenedRepository extends NumberedRepository {
  readonly settings: RepoSettings;
}

/** The repositories a command that works on each uses: every one configured, or only --repo N (opened at once). */
export async function openEachRepository(repos: RepoSettings[], selected?: number): Promise<OpenedRepository[]> {
  const chosen = selected === undefined ? repos : [pickRepository(repos, selected)];
  if (chosen.length === 0) throw usageError('no repository given', 'use --repo PATH, PGPITR_REPO, repo= or repoN-path in the configuration file');
  return Promise.all(chosen.map(async (settings) => ({ index: settings.index, settings, repo: await openRepository(settings) })));
}

/** Every configured repository, in the order of N (the commands that work on all of them). */
export function openRepositories(repos: RepoSettings[]): Promise<NumberedRepository[]> {
  return openEachRepository(repos);
}
