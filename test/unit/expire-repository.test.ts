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

test('expire with a retention window: a history file that cannot be read stops it, nothing removed', async () => {
  await withRepo(async (dir, repo, info) => {
    await writeRecord(repo.storage, record('20261202-000000F', 1));
    await writeRecord(repo.storage, record('20261204-000000F', 3));
    await pushWalFile(repo, info, '00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'), { compression: 'none' });
    const history = readdirSync(join(dir, 'main', 'archive')).find((n) => n.startsWith('00000002.history'))!;
    writeFileSync(join(dir, 'main', 'archive', history), 'flipped');
    await assert.rejects(() => expireStanza(repo, 'main', SEG, { policy: { windowMs: DAY } }, { dryRun: false, exclusive: true, nowMs: NOW }), /history file 00000002\.history of stanza main cannot be read/);
    assert.deepEqual(sets(dir), ['20261202-000000F', '20261204-000000F']);
    // A count does not follow the history: it goes on.
    const r = await expireStanza(repo, 'main', SEG, { policy: { full: 1 } }, { dryRun: false, exclusive: true, nowMs: NOW });
    assert.deepEqual(r.decision.expire.map((e) => e.id), ['20261202-000000F']);
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
