// `pgpitr expire`: retention of a stanza's backups and WAL
// (repo/retention.ts decides, repo/expire.ts carries it out), and `--pin` /
// `--unpin` to keep a backup whatever the policy says.

import { parseRepoOptions, REPO_OPTIONS_HELP } from '../repo-options.js';
import type { RepoOptions } from '../repo-options.js';
import { usageError } from '../../common/errors.js';
import { openChosenRepository } from '../../repo/open-repository.js';
import { parseRetentionWindow } from '../../repo/retention.js';
import type { RetentionPolicy } from '../../repo/retention.js';
import { expireUnderLock, setPinned } from '../../commands/expire.js';
import { ExitCode } from '../exit-codes.js';
import { printLine } from '../output.js';

const HELP = `pgpitr expire removes the backups and WAL a retention policy no longer needs.

Usage:
  pgpitr expire --repo PATH --stanza NAME --retention-full=N | --retention-window=DURATION [--dry-run]
  pgpitr expire --repo PATH --stanza NAME --pin=ID | --unpin=ID

Options:
      --retention-full=N        keep the N newest complete backups
      --retention-window=D      keep every point of the last D restorable (D: 30m, 12h, 7d, 2w)
      --dry-run                 say what would be removed, remove nothing
      --pin=ID / --unpin=ID     keep a backup whatever the policy (or stop keeping it)
Both policies may be given (a backup either keeps is kept), or set in the configuration
file (retention-full=, retention-window=); then pgpitr backup applies them after each backup.
${REPO_OPTIONS_HELP}`;

export const RETENTION_OPTIONS = {
  'retention-full': { type: 'string' },
  'retention-window': { type: 'string' },
} as const;

const EXPIRE_OPTIONS = {
  ...RETENTION_OPTIONS,
  'dry-run': { type: 'boolean' },
  pin: { type: 'string' },
  unpin: { type: 'string' },
} as const;

/** The policy from the flags or the configuration file; null when none is set. */
export function retentionPolicy(o: RepoOptions): RetentionPolicy | null {
  const full = (o.extra['retention-full'] as string | undefined) ?? o.configValue('retention-full');
  const window = (o.extra['retention-window'] as string | undefined) ?? o.configValue('retention-window');
  if (full === undefined && window === undefined) return null;
  const policy: RetentionPolicy = {};
  if (full !== undefined) {
    if (!/^\d+$/.test(full) || Number(full) < 1) throw usageError(`invalid retention-full "${full}"`, 'give a number of backups, 1 or more');
    policy.full = Number(full);
  }
  if (window !== undefined) {
    try {
      policy.windowMs = parseRetentionWindow(window);
    } catch (e) {
      throw usageError((e as Error).message);
    }
  }
  return policy;
}

export async function expireCommand(argv: string[]): Promise<number> {
  const o = parseRepoOptions('expire', argv, { extra: EXPIRE_OPTIONS });
  if (o.help) {
    process.stdout.write(HELP);
    return ExitCode.Ok;
  }
  const repo = await openChosenRepository(o.repos, o.repoSelected);
  const pin = o.extra['pin'] as string | undefined;
  const unpin = o.extra['unpin'] as string | undefined;
  if (pin !== undefined || unpin !== undefined) {
    const id = (pin ?? unpin)!;
    await setPinned(repo, o.stanza, id, pin !== undefined);
    printLine(`backup ${id} ${pin !== undefined ? 'pinned: expire keeps it' : 'unpinned'}`);
    return ExitCode.Ok;
  }
  const policy = retentionPolicy(o);
  if (!policy) throw usageError('no retention policy', 'give --retention-full=N and/or --retention-window=D (or set them in the configuration file)');
  const dryRun = o.extra['dry-run'] === true;
  const r = await expireUnderLock(repo, o.stanza, policy, { dryRun });
  if (o.output === 'json') {
    const { keep, expire } = r.decision;
    process.stdout.write(JSON.stringify({ dry_run: dryRun, keep, expire, wal_removed: r.walRemoved }, null, 2) + '\n');
    return ExitCode.Ok;
  }
  const verb = dryRun ? 'would expire' : 'expired';
  for (const e of r.decision.expire) printLine(`${verb} backup ${e.id}: ${e.why}`);
  for (const k of r.decision.keep) printLine(`kept backup ${k.id}: ${k.why}`);
  if (r.walRemoved) printLine(`${dryRun ? 'would remove' : 'removed'} ${r.walRemoved.count} archived WAL file(s), ${r.walRemoved.first} to ${r.walRemoved.last}`);
  else printLine('no archived WAL to remove');
  return ExitCode.Ok;
}
