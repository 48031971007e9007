// A repository among the several a command works with (repo1, repo2, ...):
// its N, for messages, spool directories and lock settings, and its handle.

import type { Repository } from './repository.js';

export interface NumberedRepository {
  /** N of repoN. */
  readonly index: number;
  readonly repo: Repository;
}

/** "repo2". */
export function repoName(r: NumberedRepository): string {
  return `repo${r.index}`;
}

/** "repo2 (/var/lib/pgpitr2)": for messages; the location holds no secret (describeRepository). */
export function repoTitle(r: NumberedRepository): string {
  return `repo${r.index} (${r.repo.location})`;
}
