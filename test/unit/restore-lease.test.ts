// Restore leases on a real posix repository (no server): expire keeps a backup
// a restore holds, with the WAL after it; a lease whose holder is gone (or, of
// another host, untouched for LEASE_STALE_MS) no longer holds, unless the restore
// ended and holds it for its recovery; and the race of a restore choosing a
// backup while an expire removes it ends with nothing removed, or nothing
// restored, never with a restore reading a backup being removed.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, readdirSync, readFileSync, unlinkSync, utimesSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import { writeRecord } from '../../src/repo/backup-set/record.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';
import { expireStanza } from '../../src/repo/expire.js';
import { stanzaDelete } from '../../src/commands/stanza-delete.js';
import { recoveryPending } from '../../src/postgres/recovery-signals.js';
import { LEASE_STALE_MS, RestoreLease, expiryStamp, expiryStampWhenQuiet, liveLeases, whileExpiring } from '../../src/repo/restore-lease.js';

const SEG = 16 * 1024 * 1024;
const SYSID = '7300000000000000002';
const DAY = 86_400_000;
const OLD = '20261202-000000F';
const NEW = '20261204-000000F';

function record(id: string, day: number): BackupRecord {
  const t = new Date(Date.parse('2026-12-01T00:00:00Z') + day * DAY).toISOString();
  const lsn = `${day.toString(16).toUpperCase()}/00000000`; // segment day * 256
  return {
    format: 'pgpitr-backup', format_version: 1, id, type: 'full', state: 'complete', stanza: 'main', label: '', system_identifier: SYSID,
    pg_version_num: 160000, timeline: 1, start_lsn: lsn, stop_lsn: lsn, start_wal: null, stop_wal: null,
    start_time: t, stop_time: t, stop_next_xid: null, backup_from: 'primary', wal: 'archive', compression: 'none', size: 0, stored_size: 0,
    file_count: 0, databases: [], annotations: {}, pinned: false, process: { host: 'vm', pid: 1, start_ticks: null, boot_id: null }, error: null,
  };
}

type Repo = ReturnType<typeof repositoryOn>;

async function withRepo(fn: (dir: string, repo: Repo) => Promise<void>, wrap?: (s: Storage) => Storage): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-lease-'));
  try {
    const plain = new PosixStorage(dir);
    const repo = repositoryOn(wrap ? wrap(plain) : plain, dir);
    await createStanza(repositoryOn(plain, dir), { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    await writeRecord(plain, record(OLD, 1));
    await writeRecord(plain, record(NEW, 3));
    await fn(dir, repo);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sets = (dir: string) => readdirSync(join(dir, 'main', 'backup')).sort();
/** The leases and the marker (not the stamp expire leaves: expired.json). */
const leaseFiles = (dir: string) => { try { return readdirSync(join(dir, 'main', 'restore-lease')).filter((n) => n !== 'expired.json').sort(); } catch { return []; } };
const expire = (repo: Repo, what: Parameters<typeof expireStanza>[3] = { policy: { full: 1 } }) => expireStanza(repo, 'main', SEG, what, { dryRun: false, exclusive: true });
const there = async () => null;

test('restore lease: expire keeps the backup being restored, and the WAL after it; once released it goes', async () => {
  await withRepo(async (dir, repo) => {
    const lease = await RestoreLease.take(repo.storage, 'main', OLD, there);
    const dry = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true });
    assert.match(dry.decision.keep.find((k) => k.id === OLD)!.why, /^being restored: restore \(pid \d+ on /);
    const r = await expire(repo);
    assert.deepEqual(r.decision.expire, []);
    assert.equal(r.decision.walKeepFromSegNo, 256n, 'the WAL from the leased backup on is kept');
    await assert.rejects(() => expire(repo, { set: OLD }), (e: Error & { code?: string }) => e.code === 'ERR_TARGET' && /backup 20261202-000000F is being restored/.test(e.message));
    await lease.release();
    assert.deepEqual(leaseFiles(dir), []);
    const after = await expire(repo);
    assert.deepEqual(after.decision.expire.map((e) => e.id), [OLD]);
    assert.equal(after.decision.walKeepFromSegNo, 768n);
    assert.deepEqual(sets(dir), [NEW]);
    assert.deepEqual(leaseFiles(dir), [], 'expire leaves no marker behind');
  });
});

test('restore lease: an expire that removes no backup and no WAL writes no marker (restores meet nothing)', async () => {
  const written: string[] = [];
  const spy = (st: Storage): Storage => new Proxy(st, {
    get(target, prop, receiver) {
      if (prop !== 'write') return Reflect.get(target, prop, receiver);
      return async (path: string, ...rest: unknown[]) => {
        written.push(path);
        await (target.write as (...a: unknown[]) => Promise<void>).call(target, path, ...rest);
      };
    },
  });
  await withRepo(async (dir, repo) => {
    const r = await expire(repo, { policy: { full: 2 } });
    assert.deepEqual(r.decision.expire, []);
    assert.deepEqual(written.filter((p) => p.includes('restore-lease')), []);
    await expire(repo);
    assert.deepEqual(written.filter((p) => p.endsWith('expiring.json')).length, 1, 'one that removes writes it');
    assert.deepEqual(sets(dir), [NEW]);
  }, spy);
});

test('restore lease: a holder gone no longer holds, unless its restore ended and holds the backup for recovery', async () => {
  await withRepo(async (dir, repo) => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // a pid no process has now
    const leaseDir = join(dir, 'main', 'restore-lease');
    mkdirSync(leaseDir, { recursive: true });
    const at = new Date().toISOString();
    writeFileSync(join(leaseDir, `${OLD}-held.json`), JSON.stringify({ pid: dead, host: hostname(), command: 'restore', at, backup: OLD, hold_until: new Date(Date.now() + 3600_000).toISOString() }));
    writeFileSync(join(leaseDir, `${NEW}-dead.json`), JSON.stringify({ pid: dead, host: hostname(), command: 'restore', at, backup: NEW }));
    writeFileSync(join(leaseDir, `${NEW}-ended.json`), JSON.stringify({ pid: dead, host: hostname(), command: 'restore', at, backup: NEW, hold_until: new Date(Date.now() - 1000).toISOString() }));
    const live = await liveLeases(repo.storage, 'main', { removeStale: true });
    assert.deepEqual(live.map((l) => l.name), [`${OLD}-held.json`]);
    assert.match(live[0]!.holder, /held for its recovery until that ends .*, \d{4}-.* at the latest/);
    assert.deepEqual(leaseFiles(dir), [`${OLD}-held.json`], 'stale leases removed');
    const r = await expire(repo);
    assert.deepEqual(r.decision.expire, []);
  });
});

/**
 * A restore that ended well into `dir`/restored (recovery.signal there), its lease holding OLD for
 * the recovery; its process gone (a pid no process has now), so that the recovery judges it.
 */
async function endedRestore(dir: string, repo: Repo): Promise<{ restored: string; file: string; dead: number }> {
  const restored = join(dir, 'restored');
  mkdirSync(restored);
  writeFileSync(join(restored, 'recovery.signal'), '');
  const lease = await RestoreLease.take(repo.storage, 'main', OLD, there);
  await lease.hold(restored);
  const file = join(dir, 'main', 'restore-lease', leaseFiles(dir)[0]!);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  writeFileSync(file, readFileSync(file, 'utf8').replace(/"pid":\d+/, `"pid":${dead}`).replace(/"start_ticks":"[^"]*",?/, ''));
  return { restored, file, dead };
}

test('restore lease: held for the recovery of the restored directory until its signal file goes and a promotion\'s history file is archived (seen on the restore host)', async () => {
  await withRepo(async (dir, repo) => {
    const { restored, dead } = await endedRestore(dir, repo);
    const kept = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, recoveryPending });
    assert.match(kept.decision.keep.find((k) => k.id === OLD)!.why, new RegExp(`being restored: a restore by pid ${dead} on .*, held for its recovery in ${restored} until that ends`));
    // Promoted: recovery.signal gone, but the new timeline's history file not archived yet (the
    // archive still shows only the old timeline): held until it is.
    mkdirSync(join(restored, 'pg_wal', 'archive_status'), { recursive: true });
    writeFileSync(join(restored, 'pg_wal', 'archive_status', '00000002.history.ready'), '');
    unlinkSync(join(restored, 'recovery.signal')); // PostgreSQL removes it when recovery ends
    const promoted = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, recoveryPending });
    assert.match(promoted.decision.keep.find((k) => k.id === OLD)!.why, /being restored: .*and the history file of a promotion is archived/);
    renameSync(join(restored, 'pg_wal', 'archive_status', '00000002.history.ready'), join(restored, 'pg_wal', 'archive_status', '00000002.history.done'));
    const gone = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, recoveryPending });
    assert.deepEqual(gone.decision.expire.map((e) => e.id), [OLD]);
    assert.deepEqual(leaseFiles(dir), []);
  });
});

test('restore lease: past its day, held while recovery.signal alone is still there (a recovery not started yet), not for a standby nor a directory gone', async () => {
  await withRepo(async (dir, repo) => {
    const { restored, file } = await endedRestore(dir, repo);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/"hold_until":"[^"]*"/, `"hold_until":"${new Date(Date.now() - 1000).toISOString()}"`));
    const kept = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, recoveryPending });
    assert.match(kept.decision.keep.find((k) => k.id === OLD)?.why ?? '', /being restored: .*whose recovery\.signal is still there/);
    // A week at most: an abandoned directory does not keep the backup and its WAL for ever.
    const content = readFileSync(file, 'utf8');
    writeFileSync(file, content.replace(/"hold_until":"[^"]*"/, `"hold_until":"${new Date(Date.now() - 7 * 24 * 3600_000).toISOString()}"`));
    const abandoned = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, recoveryPending });
    assert.deepEqual(abandoned.decision.expire.map((e) => e.id), [OLD]);
    writeFileSync(file, content);
    writeFileSync(join(restored, 'standby.signal'), '');
    const standby = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, recoveryPending });
    assert.deepEqual(standby.decision.expire.map((e) => e.id), [OLD]);
    rmSync(restored, { recursive: true });
    const gone = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, recoveryPending });
    assert.deepEqual(gone.decision.expire.map((e) => e.id), [OLD]);
  });
});

test("restore lease: another host's lease holds while renewed, and is stale once untouched for LEASE_STALE_MS", async () => {
  await withRepo(async (dir, repo) => {
    const leaseDir = join(dir, 'main', 'restore-lease');
    mkdirSync(leaseDir, { recursive: true });
    const path = join(leaseDir, `${OLD}-other.json`);
    const write = (atMs: number) => writeFileSync(path, JSON.stringify({ pid: 1, host: 'another-host', command: 'restore', at: new Date(atMs).toISOString(), backup: OLD }));
    write(Date.now());
    assert.equal((await liveLeases(repo.storage, 'main')).length, 1);
    const old = Date.now() - LEASE_STALE_MS - 60_000;
    write(old);
    utimesSync(path, old / 1000, old / 1000);
    assert.equal((await liveLeases(repo.storage, 'main')).length, 0, 'old by both clocks: stale');
    write(Date.now()); // renewed, the store's time old only: a clock against another, still held
    utimesSync(path, old / 1000, old / 1000);
    assert.equal((await liveLeases(repo.storage, 'main')).length, 1);
    // This host's clock 20 minutes ahead: the store's clock (given by an object just written) tells the lease fresh.
    write(Date.now());
    assert.equal((await liveLeases(repo.storage, 'main', { nowMs: Date.now() + 20 * 60_000, storeNowMs: Date.now() })).length, 1);
  });
});

test("restore lease: one taken just after expire's marker is seen by that expire", async () => {
  let sneak: (() => Promise<void>) | null = null;
  // The store runs the restore's write right after expire's marker, before expire reads the leases.
  const wrap = (s: Storage): Storage => new Proxy(s, {
    get(target, prop, receiver) {
      if (prop !== 'write') return Reflect.get(target, prop, receiver);
      return async (path: string, ...rest: unknown[]) => {
        await (target.write as (...a: unknown[]) => Promise<void>).call(target, path, ...rest);
        if (path.endsWith('expiring.json') && sneak) {
          const s2 = sneak;
          sneak = null;
          await s2();
        }
      };
    },
  });
  await withRepo(async (dir, repo) => {
    sneak = async () => {
      mkdirSync(join(dir, 'main', 'restore-lease'), { recursive: true });
      writeFileSync(join(dir, 'main', 'restore-lease', `${OLD}-late.json`), JSON.stringify({ pid: process.pid, host: hostname(), command: 'restore', at: new Date().toISOString(), backup: OLD }));
    };
    const r = await expire(repo);
    assert.match(r.decision.keep.find((k) => k.id === OLD)!.why, /being restored/);
    assert.deepEqual(sets(dir), [OLD, NEW]);
    assert.deepEqual(leaseFiles(dir), [`${OLD}-late.json`], "expire's marker is gone");
  }, wrap);
});

test('restore lease: a restore that meets a running expire waits for it and is refused, nothing written; a backup gone is refused', async () => {
  await withRepo(async (dir, repo) => {
    let taking: Promise<unknown> | null = null;
    await whileExpiring(repo.storage, 'main', async () => {
      taking = RestoreLease.take(repo.storage, 'main', OLD, there, { waitMs: 30_000 }).then((l) => l, (e: Error & { code?: string }) => e);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(leaseFiles(dir).length, 2, 'the lease and the marker, while expire runs');
    });
    // Once it has ended, what it removed is not known to the restore's plan: refused, nothing written.
    const waited = (await taking) as unknown as Error & { code?: string };
    assert.ok(waited instanceof Error && waited.code === 'ERR_TARGET' && /^expire \(pid \d+ on .*\) removed backups or WAL of stanza main while this restore chose backup 20261202-000000F: nothing was written/.test(waited.message), String(waited));
    assert.deepEqual(leaseFiles(dir), []);
    // still there past the wait: refused, nothing left
    await whileExpiring(repo.storage, 'main', async () => {
      await assert.rejects(() => RestoreLease.take(repo.storage, 'main', OLD, there, { waitMs: 300 }), (x: Error & { code?: string }) =>
        x.code === 'ERR_TARGET' && /^expire \(pid \d+ on .*\) is removing backups of stanza main, and has not ended in 0 s: this restore of backup 20261202-000000F wrote nothing/.test(x.message));
    });
    // stanza-delete writes the same marker
    await whileExpiring(repo.storage, 'main', async () => {
      await assert.rejects(() => RestoreLease.take(repo.storage, 'main', OLD, there, { waitMs: 300 }), (x: Error) => /^stanza-delete \(pid \d+ on .*\) is removing backups of stanza main/.test(x.message));
    }, 'stanza-delete');
    assert.deepEqual(leaseFiles(dir), []);
    await assert.rejects(() => RestoreLease.take(repo.storage, 'main', OLD, async () => 'backup 20261202-000000F is no longer a complete backup of stanza main'), (x: Error & { code?: string }) =>
      x.code === 'ERR_NOT_FOUND' && /no longer a complete backup of stanza main, since this restore read the catalog/.test(x.message));
    assert.deepEqual(leaseFiles(dir), []);
  });
});

test('restore lease: an expire that ended between the restore reading the catalog and its lease is found by its stamp; a stanza deleted too', async () => {
  await withRepo(async (dir, repo) => {
    const before = await expiryStamp(repo.storage, 'main');
    await expire(repo); // removes OLD, and ends, before the restore takes its lease: neither sees the other
    await assert.rejects(() => RestoreLease.take(repo.storage, 'main', NEW, there, { stampBefore: before }), (x: Error & { code?: string }) =>
      x.code === 'ERR_TARGET' && /^an expire removed backups or WAL of stanza main while this restore chose backup 20261204-000000F: nothing was written/.test(x.message));
    assert.deepEqual(leaseFiles(dir), []);
    const lease = await RestoreLease.take(repo.storage, 'main', NEW, there, { stampBefore: await expiryStamp(repo.storage, 'main') });
    await lease.release();
    // An expire killed while it removed (its marker left, its holder gone, no stamp): found changed too.
    const beforeKill = await expiryStamp(repo.storage, 'main');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(dir, 'main', 'restore-lease', 'expiring.json'), JSON.stringify({ pid: dead, host: hostname(), command: 'expire', at: new Date().toISOString(), token: 'x' }));
    await assert.rejects(() => RestoreLease.take(repo.storage, 'main', NEW, there, { stampBefore: beforeKill }), /an expire removed backups or WAL of stanza main/);
    rmSync(join(dir, 'main', 'stanza.json')); // what stanza-delete removes under its marker
    await assert.rejects(() => RestoreLease.take(repo.storage, 'main', NEW, there), /stanza "main" was deleted while this restore chose backup 20261204-000000F: nothing was written/);
  });
});

test('restore lease: the stamp a restore notes before the catalog never holds a live expire: it waits for it first', async () => {
  await withRepo(async (_dir, repo) => {
    let noted: Promise<string> | null = null;
    await whileExpiring(repo.storage, 'main', async () => {
      noted = expiryStampWhenQuiet(repo.storage, 'main', { waitMs: 30_000 });
      await new Promise((r) => setTimeout(r, 300));
    });
    const before = await (noted as unknown as Promise<string>);
    assert.equal((JSON.parse(before) as (string | null)[])[1], null, 'noted once the expire had ended: no marker in it');
    const lease = await RestoreLease.take(repo.storage, 'main', NEW, there, { stampBefore: before });
    await lease.release();
  });
});

test('restore lease: a repository the restore may only read gives a warning, not a refusal', async () => {
  const readOnly = (s: Storage): Storage => new Proxy(s, {
    get(target, prop, receiver) {
      if (prop === 'write') return async () => { throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }); };
      return Reflect.get(target, prop, receiver);
    },
  });
  await withRepo(async (dir, repo) => {
    const lines: string[] = [];
    const lease = await RestoreLease.take(repo.storage, 'main', OLD, there, { log: (l) => lines.push(l) });
    assert.match(lines.join('\n'), /warning: no lease on backup 20261202-000000F could be written .*read-only file system.*an expire running meanwhile may remove it/);
    await lease.hold('/nowhere');
    await lease.release();
    assert.deepEqual(leaseFiles(dir), []);
  }, readOnly);
  // Any other failure to write it (a full disk, an unreachable store) fails the restore before it writes anything.
  const full = (s: Storage): Storage => new Proxy(s, {
    get(target, prop, receiver) {
      if (prop === 'write') return async () => { throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }); };
      return Reflect.get(target, prop, receiver);
    },
  });
  await withRepo(async () => {
    await assert.rejects(() => RestoreLease.take(full(new PosixStorage('/nonexistent-never-used')), 'main', OLD, there), /ENOSPC/);
  });
});

test('stanza-delete --force is refused while a restore runs from the stanza, and while its recovery may not have ended unless abandoned', async () => {
  await withRepo(async (dir, repo) => {
    const lease = await RestoreLease.take(repo.storage, 'main', OLD, there);
    await assert.rejects(() => stanzaDelete(repo, 'main', true), (e: Error & { code?: string }) => e.code === 'ERR_TARGET' && /stanza "main" is being restored from: restore \(pid \d+ on .*\) reads backup 20261202-000000F/.test(e.message));
    assert.deepEqual(sets(dir), [OLD, NEW]);
    assert.deepEqual(leaseFiles(dir).length, 1, 'no marker left');
    await lease.hold(join(dir, 'restored-and-gone')); // held for a recovery: not a running restore
    // Whose end cannot be seen from here (the directory gone, or on a volume not mounted): said, and deleted only when abandoned.
    await assert.rejects(() => stanzaDelete(repo, 'main', true), (e: Error & { code?: string }) => e.code === 'ERR_TARGET' && /stanza "main" may still be needed by a recovery restored from it: restore \(pid \d+/.test(e.message));
    assert.deepEqual(sets(dir), [OLD, NEW]);
    const r = await stanzaDelete(repo, 'main', true, true);
    assert.equal(r.deleted, true);
    assert.equal(r.recoveries.length, 1);
    assert.equal(existsSync(join(dir, 'main')), false);
  });
});

test('restore lease: a new restore into the same directory drops the held lease of the one it replaced', async () => {
  await withRepo(async (dir, repo) => {
    const { restored } = await endedRestore(dir, repo);
    const first = leaseFiles(dir);
    // Elsewhere: kept. Same directory: the earlier restore's recovery can no longer run there.
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'recovery.signal'), '');
    await (await RestoreLease.take(repo.storage, 'main', NEW, there)).hold(other);
    assert.equal(leaseFiles(dir).length, 2);
    const again = await RestoreLease.take(repo.storage, 'main', NEW, there);
    await again.hold(restored);
    const left = leaseFiles(dir);
    assert.equal(left.length, 2);
    assert.ok(!left.includes(first[0]!), 'the replaced restore\'s lease is gone');
  });
});
