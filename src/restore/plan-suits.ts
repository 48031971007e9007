// Whether a backup suits a recovery target: consistent before it, as far as the
// catalog tells without reading WAL (a restore point's position is found by
// restore-point-search.ts, and planned in plan.ts).

import { PgpitrError } from '../common/errors.js';
import type { PlanBackup } from './plan.js';
import type { TargetOptions } from './restore-target.js';

/** Why b suits the target, or null when it is not consistent before it. */
export function suits(b: PlanBackup, t: TargetOptions): string | null {
  const target = t.target;
  switch (target.kind) {
    case 'end':
      return `newest backup; recovery replays the whole archive`;
    case 'immediate':
      return `newest backup; recovery stops when it is consistent`;
    case 'name':
      return `newest backup (a restore point's position is not known before replay; use --set for an older one)`;
    case 'time':
      return b.stopTimeMs <= target.ms ? `newest backup that ended before ${target.text}` : null;
    case 'lsn':
      return b.stopLsn <= target.lsn ? `newest backup that ended before ${target.text}` : null;
    case 'xid':
      if (b.stopNextXid === undefined) return `newest backup (its transaction horizon is not recorded)`;
      if (b.stopNextXid > target.xid) return null;
      // PostgreSQL compares the target with each record's 32-bit xid: the transaction 2^32 before
      // the target, if it commits after the backup (it began after it, or was still running: at
      // most 2^31 transactions old), is met first and recovery stops there. In the first epoch
      // there is no such transaction (normal xids start at 3).
      if (target.xid - b.stopNextXid >= 2n ** 31n && target.xid - 2n ** 32n >= 3n) {
        throw new PgpitrError('ERR_NOT_FOUND', `target transaction ${target.xid} began ${target.xid - b.stopNextXid} transactions after backup ${b.id} ended: PostgreSQL compares 32-bit transaction IDs during recovery, so it may stop at transaction ${target.xid - 2n ** 32n} instead (epoch ${(target.xid >> 32n) - 1n}, the same 32-bit ID ${target.xid % 2n ** 32n})`, {
          hint: 'restore a backup taken less than 2^31 transactions before the target, or give the target as --target-time or --target-lsn',
        });
      }
      return `newest backup that ended before transaction ${target.xid} ended`;
  }
}
