// A --target-xid whose transaction does not end in the archive after the backup
// is refused before anything is written (PostgreSQL would replay the whole
// archive and fail): the archive is read from its end back to the backup's start
// for the target's commit or abort, over synthetic WAL (test/helpers/wal-builder.ts).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { checkXidTargetReach } from '../../src/restore/target-xid-reach.js';
import { parseTargetOptions } from '../../src/restore/restore-target.js';
import type { TargetOptions } from '../../src/restore/restore-target.js';
import { SEG, transactionEnd } from '../helpers/wal-builder.js';
import { backedUpWal } from '../helpers/backed-up-wal.js';

const T0 = Date.UTC(2026, 11, 5, 11, 0);

/** The layout of backed-up-wal.ts, with a transaction that ends before the backup (not reached by it). */
function laidOut(after: Parameters<typeof backedUpWal>[0]) {
  return backedUpWal(after, { before: (w) => w.add(transactionEnd(T0, { xid: 700 })) });
}

const xid = (n: number): TargetOptions => ({ target: { kind: 'xid', xid: BigInt(n) }, exclusive: false, timeline: 'latest', action: 'promote' });

test('a transaction that ends after the backup (a commit or an abort) is reached; reading stops where it is found', async () => {
  const a = laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(T0 + 1000, { xid: 750 }));
    w.add(transactionEnd(T0 + 2000, { xid: 751, abort: true }));
    to(3);
  });
  await checkXidTargetReach(a.plan, a.archive, xid(750), a.read, () => undefined);
  assert.deepEqual(a.reads, [3, 2]);
  await checkXidTargetReach(a.plan, a.archive, xid(751), a.read, () => undefined);
});

test('a transaction whose commit record runs on into the next segment is reached by its ID, and leaves no doubt for others (black-box run U1)', async () => {
  const a = laidOut((w, to) => {
    to(2);
    w.padTo(BigInt(3 * SEG - 16));
    w.add(transactionEnd(T0 + 1000, { xid: 750 }));
    to(3);
  });
  await checkXidTargetReach(a.plan, a.archive, xid(750), a.read, () => undefined);
  await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(99999), a.read, () => undefined), /target transaction 99999 does not end in the archive/);
});

test('one that does not end after the backup (still running, ended before it, never existed) is refused, naming the way out', async () => {
  const a = laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(T0 + 1000, { xid: 750 }));
  });
  for (const n of [760, 700, 1]) {
    await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(n), a.read, () => undefined), (e: Error & { hint?: string; code?: string }) => {
      assert.equal(e.code, 'ERR_NOT_FOUND');
      assert.match(e.message, new RegExp(`target transaction ${n} does not end in the archive after the start of backup B`));
      assert.match(e.hint ?? '', /switch WAL on the primary.*not of a subtransaction/);
      return true;
    });
  }
});

test('a prepared transaction\'s end carries its ID in its data: reached by it, and no longer a doubt for other IDs (black-box run Y); a subtransaction\'s ID is refused naming the transaction it ended with', async () => {
  for (const stats of [undefined, { count: 2, size: 12 as const }]) {
    const a = laidOut((w, to) => {
      to(2);
      w.add(transactionEnd(T0 + 1000, { xid: 0, prepared: true, parts: { dbinfo: true, rels: 1, invals: 3, twophaseXid: 760, ...(stats ? { stats } : {}) } }));
      w.add(transactionEnd(T0 + 2000, { xid: 770, parts: { dbinfo: true, subxacts: [771, 772], invals: 1 } }));
      w.add(transactionEnd(T0 + 3000, { xid: 0, prepared: true, abort: true, parts: { subxacts: [781], rels: 2, twophaseXid: 780 } }));
    });
    await checkXidTargetReach(a.plan, a.archive, xid(760), a.read, () => undefined);
    await checkXidTargetReach(a.plan, a.archive, xid(780), a.read, () => undefined);
    // Never assigned: refused, where the prepared transaction's end made it pass before.
    await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(5000), a.read, () => undefined), /target transaction 5000 does not end in the archive/);
    for (const [sub, top, kind] of [[771, 770, 'commit'], [781, 780, 'abort']] as const) {
      await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(sub), a.read, () => undefined), (e: Error & { hint?: string }) => {
        assert.match(e.message, new RegExp(`target transaction ${sub} is a subtransaction that ended with transaction ${top} \\(32-bit ID; its ${kind} at 0/[0-9A-F]+ lists it\\)`));
        assert.match(e.hint ?? '', new RegExp(`give --target-xid ${top} \\(with its epoch`));
        return true;
      });
    }
  }
});

test('a long COMMIT PREPARED or ROLLBACK PREPARED crossing pages (and a segment) is read whole for its ID, however its header falls (black-box run W)', async () => {
  const many = Array.from({ length: 3000 }, (_, i) => 10_000 + i);
  for (const before of [200, 8]) {
    // Across a segment boundary, its header whole in the first (200 bytes before it) or cut by it (8).
    const a = laidOut((w, to) => {
      to(2);
      w.add(transactionEnd(T0 + 1000, { xid: 0, prepared: true, parts: { subxacts: many, twophaseXid: 760 } }));
      w.padTo(BigInt(3 * SEG - before));
      w.add(transactionEnd(T0 + 2000, { xid: 0, prepared: true, abort: true, parts: { subxacts: many.map((x) => x + 5000), twophaseXid: 790 } }));
      to(3);
    });
    await checkXidTargetReach(a.plan, a.archive, xid(760), a.read, () => undefined);
    await checkXidTargetReach(a.plan, a.archive, xid(790), a.read, () => undefined);
    await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(99999), a.read, () => undefined), /target transaction 99999 does not end in the archive/);
    await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(12999), a.read, () => undefined), /target transaction 12999 is a subtransaction that ended with transaction 760/);
  }
});

test('what leaves a doubt passes: a prepared transaction ending whose ID cannot be read, a segment not given, a read that fails (with a warning), a standby-free target of another kind', async () => {
  const prepared = laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(T0 + 1000, { xid: 0, prepared: true }));
  });
  await checkXidTargetReach(prepared.plan, prepared.archive, xid(760), prepared.read, () => undefined);
  const a = laidOut(() => undefined);
  await checkXidTargetReach(a.plan, a.archive, xid(760), async () => null, () => undefined);
  const warned: string[] = [];
  await checkXidTargetReach(a.plan, a.archive, xid(760), async () => {
    throw new Error('archived WAL file "x" fails its checksum');
  }, (l) => warned.push(l));
  assert.match(warned.join('\n'), /whether the archive reaches target transaction 760 was not checked: archived WAL file "x" fails its checksum/);
  await checkXidTargetReach(a.plan, a.archive, { ...xid(1), target: { kind: 'end' } }, a.read, () => undefined);
});

test('one that ends while the backup was taken (a backup recorded without its transaction horizon) is refused: recovery would meet it before it is consistent', async () => {
  const a = backedUpWal((w, to) => to(3), { during: (w) => w.add(transactionEnd(T0 + 500, { xid: 740 })) });
  await assert.rejects(checkXidTargetReach(a.plan, a.archive, xid(740), a.read, () => undefined), (e: Error & { hint?: string; code?: string }) => {
    assert.equal(e.code, 'ERR_NOT_FOUND');
    assert.match(e.message, /target transaction 740 ended at [0-9A-F]+\/[0-9A-F]+, before backup B is consistent \(from [0-9A-F]+\/[0-9A-F]+\)/);
    assert.match(e.hint ?? '', /restore an older backup \(--set ID/);
    return true;
  });
});

test('a backup that ended while the transaction ran: reached when it ends after the stop; said, when where it ends is not seen', async () => {
  const a = laidOut((w, to) => {
    to(2);
    w.add(transactionEnd(T0 + 1000, { xid: 750 }));
    to(3);
  });
  const across = { ...a.plan, backup: { ...a.plan.backup, stopNextXid: 800n } };
  await checkXidTargetReach(across, a.archive, xid(750), a.read, () => undefined);
  const said: string[] = [];
  await checkXidTargetReach(across, a.archive, xid(750), async () => null, (l) => said.push(l));
  assert.match(said.join('\n'), /warning: target transaction 750 began before backup B ended, and where it ended was not seen.*--target-time or --target-lsn of its commit/);
});

test('--target-xid 0 to 2 (of any epoch) is refused: no transaction has those IDs', () => {
  for (const xid of ['0', '1', '2', String(2n ** 32n + 2n)]) assert.throws(() => parseTargetOptions({ xid }), (e: Error & { code?: string }) => e.code === 'ERR_USAGE' && /are reserved/.test(e.message), xid);
  assert.equal(parseTargetOptions({ xid: '3' }).target.kind, 'xid');
});
