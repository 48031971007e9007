// What restore says when it refuses a target past a backup pinned standalone
// (expire --pin-target=standalone): the WAL after it may be gone on purpose.

/** The start of the hint; the caller adds what to do otherwise. */
export function standaloneHint(backupId: string): string {
  return `backup ${backupId} is pinned standalone: when expire has removed the WAL after it (pgpitr info says NOT KEPT), it restores to its end (--target-immediate) and no further; otherwise `;
}
