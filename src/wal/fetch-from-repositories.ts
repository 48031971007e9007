// archive-get with several repositories: the first repository (by N) holding
// a verified copy of the WAL file gives it. A repository that could not be
// read, or whose copy is damaged, is passed over with a warning naming it
// (and its object) when a later one has the file. The file is "not in the
// archive" only when every repository answered without it: one that failed
// might hold it, and recovery must stop rather than end early there. With one
// repository this is restoreWalFile, nothing more.

import { PgpitrError } from '../common/errors.js';
import type { ErrorCode } from '../common/errors.js';
import { fetchWalFile, findStored } from '../repo/archive-store.js';
import { readStanzaWithArchive } from '../repo/stanza.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { repoName, repoTitle } from '../repo/numbered-repository.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { restoreWalFile } from './archive-wal-file.js';
import { writePgWalFile } from './pg-wal-file.js';

export interface FetchedFrom {
  /** The repository that gave the file; null: no repository has it, and every one answered. */
  from: NumberedRepository | null;
  /** Repositories passed over before it (unreadable, damaged copy), each named. */
  warnings: string[];
}

type Failure = { r: NumberedRepository; e: Error & { code?: ErrorCode; hint?: string } };

/**
 * Fetches WAL file `name` into `dest` from the first repository with a verified copy; throws when
 * none has it and some failed. `systemId`: the cluster being recovered; a repository whose stanza
 * is another system's fails (passed over for a later one holding the file).
 */
export async function restoreFromRepositories(repos: NumberedRepository[], stanza: string, name: string, dest: string, systemId?: string | null): Promise<FetchedFrom> {
  if (repos.length === 1) {
    const only = repos[0]!;
    return { from: (await restoreWalFile(only.repo, stanza, name, dest, systemId)) ? only : null, warnings: [] };
  }
  const failures: Failure[] = [];
  const absent: NumberedRepository[] = [];
  for (const r of repos) {
    let data: Buffer | null;
    try {
      data = await fetchWalFile(r.repo, stanza, name, systemId, true);
    } catch (e) {
      failures.push({ r, e: e as Failure['e'] });
      continue;
    }
    if (data === null) {
      absent.push(r);
      continue;
    }
    writePgWalFile(dest, data); // a failure here is the destination's, not a repository's
    return { from: r, warnings: failures.map(({ r: bad, e }) => `${repoTitle(bad)}: ${e.message}; WAL file "${name}" was fetched from ${repoName(r)} instead`) };
  }
  if (failures.length === 0) return { from: null, warnings: [] };
  const first = failures[0]!.e;
  throw new PgpitrError(
    first.code ?? 'ERR_STORAGE',
    `WAL file "${name}" could not be fetched from ${failures.map(({ r, e }) => `${repoTitle(r)}: ${e.message}`).join('; ')}` +
      (absent.length > 0 ? `; it is not in ${absent.map(repoName).join(', ')}` : ''),
    {
      hint: `${first.hint ? `${first.hint}; ` : ''}a repository that could not be read may hold the file, so this is not taken for the end of the archive`,
    },
  );
}

/**
 * The stanza record of the first repository whose stanza and archive are readable (the others may
 * be down: archive-get passes over them file by file); throws when none is.
 */
export async function readAnyStanzaWithArchive(repos: NumberedRepository[], stanza: string): Promise<StanzaInfo> {
  if (repos.length === 1) return readStanzaWithArchive(repos[0]!.repo, stanza);
  const all = await Promise.allSettled(repos.map((r) => readStanzaWithArchive(r.repo, stanza)));
  const ok = all.find((x): x is PromiseFulfilledResult<StanzaInfo> => x.status === 'fulfilled');
  if (ok) return ok.value;
  const errors = all.map((x) => (x as PromiseRejectedResult).reason as Failure['e']);
  throw new PgpitrError(errors[0]!.code ?? 'ERR_STORAGE', `no repository can be read: ${repos.map((r, i) => `${repoTitle(r)}: ${errors[i]!.message}`).join('; ')}`, errors[0]!.hint ? { hint: errors[0]!.hint } : {});
}

/** Whether any of the repositories holds WAL file `name` (one that cannot be read does not say so). */
export async function storedInAny(repos: readonly NumberedRepository[], stanza: string, name: string): Promise<boolean> {
  for (const r of repos) {
    if ((await findStored(r.repo, stanza, name).catch(() => null)) !== null) return true;
  }
  return false;
}
