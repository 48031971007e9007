// The repository handle every module of repo/ takes: the Storage the
// repository's bytes live on, and where it is, for messages. Paths inside it
// come from layout.ts and are relative to the storage's root. The CLI opens
// one per command (open-repository.ts); nothing below it knows the driver.

import type { Storage } from '../storage/storage.js';
import type { CipherBlock } from './repo-cipher.js';
import { storageJoin } from '../storage/storage-path.js';

export interface Repository {
  readonly storage: Storage;
  /** Where the repository is, as the user named it (--repo): for messages and restore_command. */
  readonly location: string;
  /**
   * Set when the repository is opened encrypted: the marker's record of the key (wrapped), which
   * stanza-create writes into a new repository's marker and checks against an existing one's.
   */
  readonly encryption?: {
    block(): Promise<CipherBlock>;
    label: string;
    /** Whether the passphrase opens another wrapped key (the marker's copy holding a different one). */
    opens(block: unknown): Promise<boolean>;
  };
}

export function repositoryOn(storage: Storage, location: string, encryption?: Repository['encryption']): Repository {
  return encryption ? { storage, location, encryption } : { storage, location };
}

/** A repository path as the user can find it: the location and the path inside. */
export function displayPath(repo: Repository, path: string): string {
  return path === '' ? repo.location : storageJoin(repo.location, path);
}
