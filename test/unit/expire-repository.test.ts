// expire on a real posix repository (no server): what the records alone cannot
// say. A diff whose record cannot be parsed keeps the full backup it takes files
// from; a record saying "running" while expire holds the backup lock is a dead
// run (of another host too) and goes like a failed one; a history file that
// cannot be read stops a retention window instead of letting it guess.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { writeRecord } from '../../src/repo/backup-set/record.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';
import { expireStanza } from '../../src/repo/expire.js';
import { expireUnderLock } from '../../src/commands/expire.js';
import { RepoLock } from '../../src/repo/lock.js';
import { backupLockPath } from '../../src/repo/layout.js';
import { EXPIRING_NAME } from '../../src/repo/backup-set/unrecorded.js';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 16 * 1024 * 1024;
const SYSID = '7300000000000000001';
const DAY = 86_400_000;

function record(id: string, day: number, over: Partial<BackupRecord> = {}): BackupRecord {
  const t = new Date(Date.parse('2026-12-01T00:00:00Z') + day * DAY).toISOString();
  const seg = (day * 16).toString(16).toUpperCase().padStart(8, '0');
  return {
    format: 'pgpitr-backup', format_version: 1, id, type: 'full', state: 'complete', stanza: 'main', label: '', system_identifier: SYSID,
    pg_version_num: 160000, timeline: 1, start_lsn: `0/${seg}`, stop_lsn: `0/${seg}`, start_wal: null, stop_wal: null,
    start_time: t, stop_time: t, stop_next_xid: null, backup_from: 'primary', wal: 'archive', compression: 'none', size: 0, stored_size: 0,
    file_count: 0, databases: [], annotations: {}, pinned: false, process: { host: 'vm', pid: 1, start_ticks: null, boot_id: null }, error: null,
    ...over,
  };
}

type Info = Awaited<ReturnType<typeof createStanza>>['info'];

async function withRepo(fn: (dir: string, repo: ReturnType<typeof repositoryOn>, info: Info) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-expire-'));
  try {
    const repo = repositoryOn(new PosixStorage(dir), dir);
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    await fn(dir, repo, info);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const NOW = Date.parse('2026-12-20T00:00:00Z');
const sets = (dir: string) => readdirSync(join(dir, 'main', 'backup')).sort();

test('expire: a diff whose record is damaged keeps the full backup it takes files from', async () => {
  await withRepo(async (dir, repo) => {
    await writeRecord(repo.storage, record('20261202-000000F', 1));
    await writeRecord(repo.storage, record('20261203-000000D', 2, { type: 'diff', prior: '20261202-000000F', references: ['20261202-000000F'] }));
    await writeRecord(repo.storage, record('20261204-000000F', 3));
    writeFileSync(join(dir, 'main', 'backup', '20261203-000000D', 'backup.json'), '{ not json');
    const r = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(r.decision.expire, []);
    assert.match(r.decision.keep.find((k) => k.id === '20261202-000000F')!.why, /takes files from it/);
    assert.deepEqual(sets(dir), ['20261202-000000F', '20261203-000000D', '20261204-000000F']);
  });
});

test('expire under the backup lock: a "running" record of another host is a dead run', async () => {
  await withRepo(async (dir, repo) => {
    const elsewhere = { host: 'another-host', pid: 4242, start_ticks: null, boot_id: null };
    await writeRecord(repo.storage, record('20261202-000000F', 1, { state: 'running', stop_time: null, process: elsewhere }));
    await writeRecord(repo.storage, record('20261204-000000F', 3));
    // Without the lock (a dry run) it may be running there: kept.
    const dry = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, nowMs: NOW });
    assert.match(dry.decision.keep.find((k) => k.id === '20261202-000000F')!.why, /still running/);
    const r = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(r.decision.expire.map((e) => e.id), ['20261202-000000F']);
    assert.deepEqual(sets(dir), ['20261204-000000F']);
    // And expire --set removes such a record even with no newer backup to make it go.
    await writeRecord(repo.storage, record('20261205-000000F', 4, { state: 'running', stop_time: null, process: elsewhere }));
    await expireStanza(repo, 'main', SEG, { set: '20261205-000000F' }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(sets(dir), ['20261204-000000F']);
  });
});

test('expire --dry-run says what expire would do: with the backup lock free, a "running" record of another host is a dead run; with it held, it may be running', async () => {
  await withRepo(async (dir, repo) => {
    const elsewhere = { host: 'another-host', pid: 4242, start_ticks: null, boot_id: null };
    await writeRecord(repo.storage, record('20261202-000000F', 1, { state: 'running', stop_time: null, process: elsewhere }));
    await writeRecord(repo.storage, record('20261204-000000F', 3));
    const dry = await expireUnderLock(repo, 'main', { policy: { full: 1 } }, { dryRun: true });
    assert.deepEqual(dry.decision.expire.map((e) => e.id), ['20261202-000000F']);
    const lock = await RepoLock.acquire(repo.storage, backupLockPath('main'), 'backup');
    try {
      const held = await expireUnderLock(repo, 'main', { policy: { full: 1 } }, { dryRun: true });
      assert.match(held.decision.keep.find((k) => k.id === '20261202-000000F')!.why, /still running/);
    } finally {
      await lock.release();
    }
    assert.deepEqual(sets(dir), ['20261202-000000F', '20261204-000000F'], 'a dry run removes nothing');
  });
});

test('expire says each backup set it removed as it goes (a run killed later has said what is gone)', async () => {
  await withRepo(async (dir, repo) => {
    for (const [id, day] of [['20261202-000000F', 1], ['20261203-000000F', 2], ['20261204-000000F', 3]] as const) await writeRecord(repo.storage, record(id, day));
    const told: string[] = [];
    const r = await expireUnderLock(repo, 'main', { policy: { full: 1 } }, { dryRun: false, removed: (id, why) => told.push(`${id}: ${why}`) });
    assert.deepEqual(told.map((t) => t.slice(0, 16)).sort(), r.decision.expire.map((e) => e.id).sort());
    assert.equal(told.length, 2);
    assert.ok(told.every((t) => t.length > 18), 'with why');
    assert.deepEqual(sets(dir), ['20261204-000000F']);
  });
});

test('expire with a retention window: a history file that cannot be read stops it, nothing removed', async () => {
  await withRepo(async (dir, repo, info) => {
    await writeRecord(repo.storage, record('20261202-000000F', 1));
    await writeRecord(repo.storage, record('20261204-000000F', 3));
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'), { compression: 'none' });
    const history = readdirSync(join(dir, 'main', 'archive')).find((n) => n.startsWith('00000002.history'))!;
    writeFileSync(join(dir, 'main', 'archive', history), 'flipped');
    await assert.rejects(() => expireStanza(repo, 'main', SEG, { policy: { windowMs: DAY } }, { dryRun: false, exclusive: true, nowMs: NOW }), /history file 00000002\.history of stanza main cannot be read/);
    assert.deepEqual(sets(dir), ['20261202-000000F', '20261204-000000F']);
    // A count keeps the newest backup on that history too: it stops as well (taken as "every backup is
    // on it", it would keep only the newest of a branch left behind).
    await assert.rejects(() => expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW }), /history file 00000002\.history of stanza main cannot be read/);
    assert.deepEqual(sets(dir), ['20261202-000000F', '20261204-000000F']);
  });
});

test('expire: WAL of a timeline whose history file is not archived (yet) stops it, nothing removed', async () => {
  await withRepo(async (dir, repo, info) => {
    await writeRecord(repo.storage, record('20261202-000000F', 1));
    await writeRecord(repo.storage, record('20261204-000000F', 3));
    await pushWalFile(repo, info, '000000020000000000000040', walSegment({ segNo: 0x40, segmentSize: SEG, systemId: SYSID, timeline: 2 }), { compression: 'none' });
    for (const policy of [{ full: 1 }, { windowMs: DAY }]) {
      await assert.rejects(() => expireStanza(repo, 'main', SEG, { policy }, { dryRun: false, exclusive: true, nowMs: NOW }), (e: Error & { code?: string; hint?: string }) =>
        e.code === 'ERR_CHECK' && /history file 00000002\.history of stanza main is not in the archive, though WAL of timeline 2 is/.test(e.message) && /archive-push pg_wal\/00000002\.history/.test(e.hint ?? ''));
    }
    assert.deepEqual(sets(dir), ['20261202-000000F', '20261204-000000F']);
  });
});

test('expire: a stanza that knows only one timeline after 1 (archiving began after the last promotion) needs no history file', async () => {
  await withRepo(async (dir, repo, info) => {
    await writeRecord(repo.storage, record('20261202-000000F', 1, { timeline: 5 }));
    await writeRecord(repo.storage, record('20261204-000000F', 3, { timeline: 5 }));
    await pushWalFile(repo, info, '000000050000000000000040', walSegment({ segNo: 0x40, segmentSize: SEG, systemId: SYSID, timeline: 5 }), { compression: 'none' });
    const r = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(r.decision.expire.map((e) => e.id), ['20261202-000000F']);
    assert.deepEqual(sets(dir), ['20261204-000000F']);
  });
});

test('expire: a WAL directory it empties goes, one still holding segments stays, and archiving into it again works', async () => {
  await withRepo(async (dir, repo, info) => {
    await writeRecord(repo.storage, record('20261202-000000F', 1, { start_lsn: '0/1000000', stop_lsn: '0/1000100' }));
    await writeRecord(repo.storage, record('20261204-000000F', 3, { start_lsn: '1/1000000', stop_lsn: '1/1000100' }));
    const segment = (segNo: number) => walSegment({ segNo, segmentSize: SEG, systemId: SYSID });
    for (const segNo of [1, 2, 257]) {
      await pushWalFile(repo, info, `00000001${(segNo >> 8).toString(16).padStart(8, '0')}${(segNo & 255).toString(16).padStart(8, '0')}`.toUpperCase(), segment(segNo), { compression: 'none' });
    }
    const archiveDirs = () => readdirSync(join(dir, 'main', 'archive')).filter((n) => !n.includes('.')).sort();
    assert.deepEqual(archiveDirs(), ['0000000100000000', '0000000100000001']);
    const r = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.equal(r.walRemoved?.count, 2);
    assert.deepEqual(archiveDirs(), ['0000000100000001']);
    await pushWalFile(repo, info, '000000010000000000000003', segment(3), { compression: 'none' });
    assert.equal(readdirSync(join(dir, 'main', 'archive', '0000000100000000')).length, 1);
  });
});

test('expire by count: the newest backup on the timeline WAL is archived on is kept too (a restore to an earlier point), not for a timeline a copy promoted elsewhere left behind, and not in place of production\'s on timeline 1', async () => {
  await withRepo(async (dir, repo, info) => {
    const { utimesSync } = await import('node:fs');
    const F1 = '20261202-000000F';
    const F2 = '20261204-000000F';
    await writeRecord(repo.storage, record(F1, 1, { start_lsn: '0/2000028', stop_lsn: '0/2000100' }));
    await writeRecord(repo.storage, record(F2, 3, { start_lsn: '0/A000028', stop_lsn: '0/A000100' }));
    // Timeline 2 forked from 1 at 0/3000000, before F2: F2 cannot reach it.
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'), { compression: 'none' });
    const push = async (tli: number, segNo: number) => {
      const name = `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${segNo.toString(16).toUpperCase().padStart(8, '0')}`;
      await pushWalFile(repo, info, name, walSegment({ segNo, segmentSize: SEG, systemId: SYSID, timeline: tli }), { compression: 'none' });
    };
    for (let s = 2; s <= 11; s++) await push(1, s);
    for (let s = 3; s <= 4; s++) await push(2, s);
    const age = (tli: string, ms: number) => {
      const d = join(dir, 'main', 'archive', `${tli}00000000`);
      for (const f of readdirSync(d)) utimesSync(join(d, f), new Date(ms), new Date(ms));
    };
    // Just restored to an earlier point: timeline 2's history file is stored last, before any whole segment of it.
    rmSync(join(dir, 'main', 'archive', '0000000200000000'), { recursive: true, force: true });
    age('00000001', Date.now() - 2 * DAY);
    const promoted = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, exclusive: true, nowMs: NOW });
    assert.deepEqual(promoted.decision.keep.map((k) => k.id).sort(), [F1, F2]);
    for (let s = 3; s <= 4; s++) await push(2, s);
    // Production went on on timeline 1 (stored last); timeline 2 is a copy's, stored long ago (its history file too).
    age('00000001', Date.now());
    age('00000002', Date.now() - DAY);
    for (const f of readdirSync(join(dir, 'main', 'archive'))) if (f.includes('.history')) utimesSync(join(dir, 'main', 'archive', f), new Date(Date.now() - DAY), new Date(Date.now() - DAY));
    const stray = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, exclusive: true, nowMs: NOW });
    assert.deepEqual(stray.decision.keep.map((k) => k.id), [F2]);
    // A window the same: the copy's higher-numbered timeline does not hold F1 (and the WAL after it) for ever.
    const strayWindow = await expireStanza(repo, 'main', SEG, { policy: { windowMs: DAY } }, { dryRun: true, exclusive: true, nowMs: NOW });
    assert.deepEqual(strayWindow.decision.keep.map((k) => k.id), [F2]);
    // Timeline 2 is where WAL goes now (the cluster was restored to a point before F2): F1 is kept with it.
    age('00000001', Date.now() - 2 * DAY);
    const restored = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, exclusive: true, nowMs: NOW });
    assert.deepEqual(restored.decision.keep.map((k) => k.id).sort(), [F1, F2]);
    // The copy on timeline 2 took a backup into the stanza, newer than production's; production
    // (timeline 1) archives last again: production's newest backup is kept besides the copy's.
    const C = '20261205-000000F';
    await writeRecord(repo.storage, record(C, 4, { timeline: 2, start_lsn: '0/4000028', stop_lsn: '0/4000100' }));
    age('00000001', Date.now());
    const clone = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, exclusive: true, nowMs: NOW });
    assert.deepEqual(clone.decision.keep.map((k) => k.id).sort(), [F2, C]);
    const cloneWindow = await expireStanza(repo, 'main', SEG, { policy: { windowMs: DAY } }, { dryRun: true, exclusive: true, nowMs: NOW });
    assert.deepEqual(cloneWindow.decision.keep.map((k) => k.id).sort(), [F2, C]);
  });
});

test('expire: a set without a record that a kept incr takes files from stays; a complete incr needs only the backups it takes files from, not its prior', async () => {
  await withRepo(async (dir, repo) => {
    const F = '20261202-000000F';
    const I1 = '20261203-000000I';
    const I2 = '20261204-000000I';
    await writeRecord(repo.storage, record(F, 1));
    await writeRecord(repo.storage, record(I1, 2, { type: 'incr', prior: F, references: [F] }));
    // Every file I1 stored changed again before I2: I2 takes files from F only.
    await writeRecord(repo.storage, record(I2, 3, { type: 'incr', prior: I1, references: [F] }));
    // An expire of I1 interrupted after its record went (its mark was written first): the next one
    // removes what is left of it (I2 takes nothing from it).
    writeFileSync(join(dir, 'main', 'backup', I1, EXPIRING_NAME), '{}');
    rmSync(join(dir, 'main', 'backup', I1, 'backup.json'));
    writeFileSync(join(dir, 'main', 'backup', I1, 'manifest.json'), '{}');
    await expireStanza(repo, 'main', SEG, { policy: { full: 5 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(sets(dir), [F, I2]);
    await writeRecord(repo.storage, record(I1, 2, { type: 'incr', prior: F, references: [F] }));
    const r = await expireStanza(repo, 'main', SEG, { set: I1 }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(r.decision.expire.map((e) => e.id), [I1]);
    assert.deepEqual(sets(dir), [F, I2]);
    // F's record lost (a lifecycle rule, a hand): its set is I2's files, kept by every expire.
    rmSync(join(dir, 'main', 'backup', F, 'backup.json'));
    writeFileSync(join(dir, 'main', 'backup', F, 'manifest.json'), '{}');
    await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(sets(dir), [F, I2]);
  });
});

test('expire: a stored backup that lost its record (manifest, no mark) is kept and named, by a dry run too; --set removes it, unless a backup takes files from it', async () => {
  await withRepo(async (dir, repo) => {
    const F1 = '20261202-000000F';
    const F2 = '20261204-000000F';
    const I = '20261205-000000I';
    await writeRecord(repo.storage, record(F1, 1));
    await writeRecord(repo.storage, record(F2, 3));
    writeFileSync(join(dir, 'main', 'backup', F1, 'manifest.json'), '{}');
    rmSync(join(dir, 'main', 'backup', F1, 'backup.json'));
    // A set an old expire began to remove (no mark then) that had lost its manifest already: left over.
    const OLD = '20261201-000000F';
    await writeRecord(repo.storage, record(OLD, 0));
    rmSync(join(dir, 'main', 'backup', OLD, 'backup.json'));
    const dry = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, nowMs: NOW });
    assert.deepEqual(dry.unrecorded, [F1]);
    const r = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(r.unrecorded, [F1]);
    assert.deepEqual(r.decision.expire, []);
    assert.deepEqual(sets(dir), [F1, F2], 'the leftover goes, the backup that lost its record stays');
    // An incr taking files from it: --set refuses, naming the fix.
    await writeRecord(repo.storage, record(I, 4, { type: 'incr', prior: F2, references: [F2, F1] }));
    await assert.rejects(expireStanza(repo, 'main', SEG, { set: F1 }, { dryRun: false, exclusive: true, nowMs: NOW }), (e: Error) => /backup set 20261202-000000F has no record, and backup 20261205-000000I takes files from it/.test(e.message) && /copy its backup\.json back/.test((e as { hint?: string }).hint ?? ''));
    rmSync(join(dir, 'main', 'backup', I), { recursive: true });
    // Asked for by --set, it goes (a dry run first says so).
    const asked = await expireStanza(repo, 'main', SEG, { set: F1 }, { dryRun: true, nowMs: NOW });
    assert.deepEqual(asked.decision.expire.map((e) => e.id), [F1]);
    assert.deepEqual(asked.unrecorded, []);
    assert.deepEqual(sets(dir), [F1, F2]);
    await expireStanza(repo, 'main', SEG, { set: F1 }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(sets(dir), [F2]);
  });
});

test('expire: the set it removes is marked, then loses its record, then its manifest', async () => {
  await withRepo(async (dir, repo) => {
    const F1 = '20261202-000000F';
    const F2 = '20261204-000000F';
    await writeRecord(repo.storage, record(F1, 1));
    await writeRecord(repo.storage, record(F2, 3));
    writeFileSync(join(dir, 'main', 'backup', F1, 'manifest.json'), '{}');
    const seen: string[] = [];
    const storage = repo.storage;
    const watched = Object.assign(Object.create(Object.getPrototypeOf(storage) as object) as typeof storage, storage, {
      write: (path: string, ...rest: unknown[]) => (seen.push(`write ${path}`), (storage.write as (...a: unknown[]) => Promise<void>).call(storage, path, ...rest)),
      remove: (path: string, opts?: { recursive?: boolean }) => (seen.push(`remove ${path}${opts?.recursive ? ' -r' : ''}`), storage.remove(path, opts)),
    });
    await expireStanza({ ...repo, storage: watched }, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    const mine = seen.filter((l) => l.includes(F1));
    assert.deepEqual(mine, [`write main/backup/${F1}/${EXPIRING_NAME}`, `remove main/backup/${F1}/backup.json`, `remove main/backup/${F1}/manifest.json`, `remove main/backup/${F1} -r`]);
    assert.deepEqual(sets(dir), [F2]);
  });
});

test('expire after a restore in place to a point before a failover (an inverted history: the recovery followed timeline 2 and stopped on timeline 1): the backup timeline 3 is restored from is kept', async () => {
  await withRepo(async (_dir, repo, info) => {
    const F1 = '20261202-000000F';
    const F2 = '20261204-000000F';
    await writeRecord(repo.storage, record(F1, 1, { start_lsn: '0/2000028', stop_lsn: '0/2000100' }));
    // F2 ended on timeline 1 after 0/5000000, where timeline 3 left it: timeline 1's abandoned future.
    await writeRecord(repo.storage, record(F2, 3, { start_lsn: '0/A000028', stop_lsn: '0/A000100' }));
    const push = async (tli: number, segNo: number) => {
      const name = `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${segNo.toString(16).toUpperCase().padStart(8, '0')}`;
      await pushWalFile(repo, info, name, walSegment({ segNo, segmentSize: SEG, systemId: SYSID, timeline: tli }), { compression: 'none' });
    };
    for (let s = 2; s <= 12; s++) await push(1, s);
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/C000000\tno recovery target specified\n'), { compression: 'none' });
    for (let s = 12; s <= 13; s++) await push(2, s);
    await pushWalFile(repo, info, '00000003.history', Buffer.from('1\t0/C000000\tno recovery target specified\n2\t0/5000000\tbefore 2026-12-03 00:00:00+00\n'), { compression: 'none' });
    for (let s = 5; s <= 6; s++) await push(3, s);
    const r = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: true, exclusive: true, nowMs: NOW });
    assert.deepEqual(r.decision.keep.map((k) => k.id).sort(), [F1, F2]);
    assert.match(r.decision.keep.find((k) => k.id === F1)!.why, /the newest complete backup the newest timeline's history can be restored from/);
  });
});
