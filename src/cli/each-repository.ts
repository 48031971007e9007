// Running a command on each repository it applies to (every one configured, or
// --repo N): one repository failing does not stop the others, and the command
// fails at the end with the first error, named by its repository. With one
// repository, its error is thrown as it is.

import { PgpitrError } from '../common/errors.js';
import type { OpenedRepository } from '../repo/open-repository.js';

export interface RepositoryOutcome<T> {
  index: number;
  location: string;
  result?: T;
  error?: Error;
}

export async function onEachRepository<T>(repos: OpenedRepository[], fn: (r: OpenedRepository) => Promise<T>): Promise<RepositoryOutcome<T>[]> {
  const out: RepositoryOutcome<T>[] = [];
  for (const r of repos) {
    try {
      out.push({ index: r.index, location: r.repo.location, result: await fn(r) });
    } catch (e) {
      if (repos.length === 1) throw e;
      out.push({ index: r.index, location: r.repo.location, error: e as Error });
    }
  }
  return out;
}

/** Throws the first repository's error (after the others have been reported), naming the repository. */
export function throwFirstFailure(outcomes: RepositoryOutcome<unknown>[]): void {
  const failed = outcomes.filter((o) => o.error);
  if (failed.length === 0) return;
  const first = failed[0]!;
  const e = first.error as PgpitrError;
  const others = failed.length > 1 ? ` (and repo${failed.slice(1).map((f) => f.index).join(', repo')} failed too)` : '';
  throw new PgpitrError(e instanceof PgpitrError ? e.code : 'ERR_INTERNAL', `repo${first.index} (${first.location}): ${e.message}${others}`, e.hint ? { hint: e.hint } : {});
}
