// Synchronous archive-push with several repositories: the WAL file is read,
// checked, hashed and compressed once, then stored in every repository at
// once. It is archived only when every repository has it: otherwise the error
// names each repository that failed and why, and PostgreSQL retries the file,
// which the repositories that have it answer as "already archived" (same
// checksum). With one repository this is archiveWalFile, nothing more.

import { basename } from 'node:path';
import { PgpitrError } from '../common/errors.js';
import type { ErrorCode } from '../common/errors.js';
import { storePreparedWal } from '../repo/archive-store.js';
import type { PushOptions, PushOutcome } from '../repo/archive-store.js';
import { readStanza } from '../repo/stanza.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { repoTitle } from '../repo/numbered-repository.js';
import type { NumberedRepository } from '../repo/numbered-repository.js';
import { archiveWalFile, prepareWalFile } from './archive-wal-file.js';

export interface RepoPushOutcome {
  repository: NumberedRepository;
  outcome: PushOutcome;
}

/** Stores the WAL file at `source` in every repository; throws unless every one has it. */
export async function archiveToAll(repos: NumberedRepository[], stanzaName: string, source: string, opts: PushOptions): Promise<RepoPushOutcome[]> {
  if (repos.length === 1) {
    const only = repos[0]!;
    return [{ repository: only, outcome: await archiveWalFile(only.repo, await readStanza(only.repo, stanzaName), source, opts) }];
  }
  const stanzas = await Promise.allSettled(repos.map((r) => readStanza(r.repo, stanzaName)));
  const known = stanzas.find((s): s is PromiseFulfilledResult<StanzaInfo> => s.status === 'fulfilled');
  if (!known) throw failedEverywhere(basename(source), repos, stanzas.map((s) => (s as PromiseRejectedResult).reason as Error));
  // A fault of the file itself (not a WAL file, another cluster's) is the same for every repository.
  const file = await prepareWalFile(known.value, source, opts);
  let stores: PromiseSettledResult<PushOutcome>[];
  try {
    stores = await Promise.allSettled(
      repos.map((r, i) => {
        const s = stanzas[i]!;
        return s.status === 'fulfilled' ? storePreparedWal(r.repo, s.value, file.prepared) : Promise.reject(s.reason as Error);
      }),
    );
  } finally {
    await file.release();
  }
  const failed = repos.flatMap((r, i) => (stores[i]!.status === 'rejected' ? [{ r, e: (stores[i] as PromiseRejectedResult).reason as Error & { code?: ErrorCode; hint?: string } }] : []));
  if (failed.length > 0) {
    const stored = repos.filter((_, i) => stores[i]!.status === 'fulfilled');
    const first = failed[0]!.e;
    throw new PgpitrError(first.code ?? 'ERR_STORAGE', `WAL file "${file.prepared.name}" could not be archived in ${failed.map(({ r, e }) => `${repoTitle(r)}: ${e.message}`).join('; ')}`, {
      detail: `it is archived in ${stored.map(repoTitle).join(', ')}`,
      hint: `${first.hint ? `${first.hint}; ` : ''}PostgreSQL keeps the file and retries it: the repositories that have it answer "already archived"`,
    });
  }
  return repos.map((r, i) => ({ repository: r, outcome: (stores[i] as PromiseFulfilledResult<PushOutcome>).value }));
}

function failedEverywhere(name: string, repos: NumberedRepository[], errors: (Error & { code?: ErrorCode; hint?: string })[]): PgpitrError {
  const first = errors[0]!;
  return new PgpitrError(first.code ?? 'ERR_STORAGE', `WAL file "${name}" could not be archived in any repository: ${repos.map((r, i) => `${repoTitle(r)}: ${errors[i]!.message}`).join('; ')}`, first.hint ? { hint: first.hint } : {});
}
