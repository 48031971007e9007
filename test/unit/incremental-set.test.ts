// Diff and incr backup sets through the posix driver: a file unchanged since the
// prior backup (same size and time, that time before the prior backup started)
// is recorded with a reference to the set that stores it and read back from
// there; anything else is copied; the prior backup is chosen pgBackRest's way.

import { test, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { BackupSetWriter } from '../../src/repo/backup-set/writer.js';
import type { PriorSet } from '../../src/repo/backup-set/writer.js';
import { BackupSetReader } from '../../src/repo/backup-set/reader.js';
import { manifestReferences, parseManifest } from '../../src/repo/backup-set/manifest.js';
import { serializeManifest } from '../../src/repo/backup-set/manifest-text.js';
import type { BackupSetManifest } from '../../src/repo/backup-set/manifest.js';
import { newBackupId } from '../../src/repo/backup-set/record.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';
import { choosePrior, checkResumedPrior } from '../../src/backup/repo/prior-choice.js';
import type { ServerNow } from '../../src/backup/repo/prior-choice.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const T = 1_700_000_000;
const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
const FULL = '20261201-100000F';
const INCR = '20261201-110000I';
const INCR2 = '20261201-120000I';

function priorOf(m: BackupSetManifest, startedAt: number): PriorSet {
  return { id: m.backup_id, files: new Map(m.files.map((f) => [f.path, f])), modifiedBefore: startedAt - 1 };
}

async function set(storage: PosixStorage, id: string, files: { path: string; data: Buffer; mtime: number }[], prior?: PriorSet) {
  const w = new BackupSetWriter({ storage, dir: `main/backup/${id}`, backupId: id, compression: 'zstd', bundleFileMax: 1000, prior });
  for (const f of files) {
    const meta = { path: f.path, size: f.data.length, mode: 0o600, mtime: f.mtime };
    const same = w.unchanged(meta);
    if (same) w.reference(meta, same);
    else if (w.isSmall(f.data.length)) await w.addSmallFile(meta, f.data);
    else await w.addLargeFile(meta, Readable.from([f.data]));
  }
  return { manifest: await w.finish(), referenced: w.referenced.files };
}

test('an incr set takes unchanged files from its prior set, copies the rest, and reads them all back', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-incr-'));
  roots.push(root);
  const storage = new PosixStorage(root);
  const small = bytes(500, 1);
  const big = bytes(300_000, 2);
  const full = await set(storage, FULL, [
    { path: 'base/1/small', data: small, mtime: T },
    { path: 'base/1/big', data: big, mtime: T },
    { path: 'base/1/late', data: bytes(400, 3), mtime: T + 9 }, // written in the second before the full started
    { path: 'base/1/gone', data: bytes(10, 4), mtime: T },
    { path: 'global/pg_control', data: bytes(100, 5), mtime: T },
  ]);
  assert.equal(full.manifest.format_version, 4);
  const changed = bytes(500, 6);
  const incr = await set(storage, INCR, [
    { path: 'base/1/small', data: small, mtime: T },
    { path: 'base/1/big', data: big, mtime: T },
    { path: 'base/1/late', data: bytes(400, 7), mtime: T + 9 }, // same size and time: copied all the same
    { path: 'base/1/changed', data: changed, mtime: T },
    { path: 'global/pg_control', data: bytes(100, 8), mtime: T },
  ], priorOf(full.manifest, T + 10));
  assert.equal(incr.referenced, 2);
  assert.equal(incr.manifest.format_version, 4);
  assert.deepEqual(manifestReferences(incr.manifest), [FULL]);
  const byPath = new Map(incr.manifest.files.map((f) => [f.path, f]));
  assert.equal(byPath.get('base/1/small')!.reference, FULL);
  assert.equal(byPath.get('base/1/big')!.reference, FULL);
  assert.equal(byPath.get('base/1/late')!.reference, undefined);
  assert.equal(byPath.get('global/pg_control')!.reference, undefined);

  const r = await BackupSetReader.open(storage, `main/backup/${INCR}`);
  const want = new Map([['base/1/small', small], ['base/1/big', big], ['base/1/late', bytes(400, 7)], ['base/1/changed', changed], ['global/pg_control', bytes(100, 8)]]);
  for (const f of r.manifest.files) assert.ok((await collect(await r.read(f))).equals(want.get(f.path)!), f.path);
  assert.match(r.storedLocation(byPath.get('base/1/big')!), new RegExp(`main/backup/${FULL}/data/base/1/big`));

  // An incr of the incr names the set that stores each file, never a set that only refers to it.
  const again = await set(storage, INCR2, [
    { path: 'base/1/small', data: small, mtime: T },
    { path: 'base/1/changed', data: changed, mtime: T },
  ], priorOf(incr.manifest, T + 100));
  assert.deepEqual(manifestReferences(again.manifest), [FULL, INCR]);
  const r2 = await BackupSetReader.open(storage, `main/backup/${INCR2}`);
  for (const f of r2.manifest.files) assert.ok((await collect(await r2.read(f))).equals(want.get(f.path)!), f.path);

  // The file's set gone: the read names the missing object in that set.
  rmSync(join(root, 'main/backup', INCR, 'bundle'), { recursive: true });
  const lost = r2.manifest.files.find((f) => f.reference === INCR)!;
  await assert.rejects(async () => collect(await r2.read(lost)), new RegExp(`${INCR}/bundle/\\d+.* is missing`));
});

test('a manifest reference must be a backup id other than its own, in format 3', () => {
  const m: BackupSetManifest = {
    format: 'pgpitr-backup-manifest', format_version: 3, backup_id: INCR, compression: 'none', directories: [], tablespaces: [], server_manifest: null,
    files: [{ path: 'base/1/x', size: 1, mode: 0o600, mtime: T, xxh128: '0'.repeat(32), stored: { object: 'data/base/1/x' }, reference: FULL }],
  };
  assert.equal(parseManifest(serializeManifest(m), 'm').files[0]!.reference, FULL);
  for (const bad of [{ format_version: 2 as const }, { files: [{ ...m.files[0]!, reference: INCR }] }, { files: [{ ...m.files[0]!, reference: '../x' }] }]) {
    assert.throws(() => parseManifest(serializeManifest({ ...m, ...bad }), 'm'), /no valid reference/);
  }
});

test('backup ids carry the type and stay unique per second whatever the type', () => {
  const at = new Date('2026-12-01T10:00:00Z');
  assert.equal(newBackupId(at, new Set(), 'incr'), '20261201-100000I');
  assert.equal(newBackupId(at, new Set(['20261201-100000F']), 'diff'), '20261201-100000D_2');
  assert.equal(newBackupId(at, new Set(['20261201-100000F', '20261201-100000I_2']), 'full'), '20261201-100000F_3');
});

test('a diff is compared with the newest complete full backup, an incr with the newest complete backup', () => {
  const rec = (id: string, type: BackupRecord['type'], extra: Partial<BackupRecord> = {}) =>
    ({ id, type, state: 'complete', system_identifier: '7', pg_version_num: 180001, compression: 'zstd', timeline: 1, backup_from: 'primary', server_start_time: '2026-12-01T10:00:00.000Z', server_stop_time: '2026-12-01T10:05:00.000Z', ...extra }) as BackupRecord;
  const server: ServerNow = { systemIdentifier: '7', pgVersionNum: 180001, compression: 'zstd', timeline: 1, backupFrom: 'primary', clockMs: Date.parse('2026-12-01T11:00:00Z') };
  const list = [rec('A', 'full'), rec('B', 'incr', { references: ['A'] }), rec('C', 'full', { state: 'failed' })];
  const prior = (l: BackupRecord[], type: 'diff' | 'incr', s: ServerNow) => choosePrior(l, type, s) as { prior?: BackupRecord; reason?: string };
  assert.equal(prior(list, 'diff', server).prior?.id, 'A');
  assert.equal(prior(list, 'incr', server).prior?.id, 'B');
  assert.match(prior([], 'incr', server).reason!, /no complete backup/);
  assert.match(prior(list, 'incr', { ...server, compression: 'lz4' }).reason!, /compressed with zstd/);
  assert.match(prior(list, 'incr', { ...server, pgVersionNum: 170001 }).reason!, /PostgreSQL 180001/);
  // A minor update since (the server restarted on 18.2): no data file rewritten, the prior still serves.
  assert.equal(prior(list, 'incr', { ...server, pgVersionNum: 180002 }).prior?.id, 'B');
  assert.match(prior([rec('A', 'full', { server_start_time: undefined })], 'diff', server).reason!, /older pgpitr/);
  // Restored or promoted since: another history, whose files may carry the times a restore gave them.
  assert.match(prior(list, 'incr', { ...server, timeline: 2 }).reason!, /timeline 1, the server is on timeline 2/);
  // Another kind of server is another host, with another clock.
  assert.match(prior(list, 'incr', { ...server, backupFrom: 'standby' }).reason!, /from a primary, this one from a standby/);
  assert.match(prior(list, 'incr', { ...server, clockMs: Date.parse('2026-12-01T09:00:00Z') }).reason!, /which now says 2026-12-01T09:00:00/);
  // Ended after the server's clock of now: set back since.
  assert.match(prior([rec('A', 'full', { server_stop_time: '2026-12-01T12:00:00.000Z' })], 'diff', server).reason!, /ended at 2026-12-01T12:00:00.000Z .*set back since/);
  // No end time, or one before the start (the clock set back while it ran): its file times cannot be trusted.
  assert.match(prior([rec('A', 'full', { server_stop_time: null })], 'diff', server).reason!, /has no end time by the server's clock/);
  assert.match(prior([rec('A', 'full', { server_stop_time: '2026-12-01T09:59:00.000Z' })], 'diff', server).reason!, /ended at 2026-12-01T09:59:00.000Z .*before it started .*set back while it ran/);
  // A chain with a backup gone is not built on.
  assert.match(prior([rec('B', 'incr', { references: ['A'] })], 'incr', server).reason!, /takes files from backup A, which is no longer a complete backup/);
});

test('an incr taken over by --resume is refused when its prior backup no longer fits the server', () => {
  const rec = (id: string, type: BackupRecord['type'], extra: Partial<BackupRecord> = {}) =>
    ({ id, type, state: 'complete', system_identifier: '7', pg_version_num: 180001, compression: 'zstd', timeline: 1, backup_from: 'primary', server_start_time: '2026-12-01T10:00:00.000Z', server_stop_time: '2026-12-01T10:05:00.000Z', ...extra }) as BackupRecord;
  const server: ServerNow = { systemIdentifier: '7', pgVersionNum: 180001, compression: 'zstd', timeline: 1, backupFrom: 'primary', clockMs: Date.parse('2026-12-01T11:00:00Z') };
  const full = rec('A', 'full');
  const interrupted = rec('B', 'incr', { state: 'running', prior: 'A', references: ['A'] });
  const list = [full, interrupted];
  checkResumedPrior(interrupted, full, list, server); // still fits: nothing thrown
  const refused = (s: ServerNow, l = list) => {
    try {
      checkResumedPrior(interrupted, full, l, s);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'ERR_CHECK');
      return (e as Error).message;
    }
    return '';
  };
  assert.match(refused({ ...server, timeline: 2 }), /^an incr backup B cannot be resumed: its prior backup, A, was taken on timeline 1, the server is on timeline 2/);
  assert.match(refused({ ...server, clockMs: Date.parse('2026-12-01T09:00:00Z') }), /cannot be resumed: .*which now says 2026-12-01T09:00:00/);
  assert.match(refused(server, [rec('A', 'full', { state: 'failed' }), interrupted]), /its prior backup, A, is no longer a complete backup/);
});

test('loadPrior takes only files whose stored bytes are still there, in the set that holds them', async () => {
  const { loadPrior } = await import('../../src/backup/repo/prior-choice.js');
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-prior-'));
  roots.push(root);
  const storage = new PosixStorage(root);
  const full = await set(storage, FULL, [
    { path: 'base/1/small', data: bytes(500, 1), mtime: T },
    { path: 'base/1/big', data: bytes(300_000, 2), mtime: T },
  ]);
  const rec = { id: FULL, stanza: 'main', server_start_time: new Date((T + 10) * 1000).toISOString() } as BackupRecord;
  const whole = await loadPrior(storage, rec);
  assert.equal(whole.files.size, 2);
  assert.equal(whole.missing, 0);
  // The large file's object lost (a lifecycle rule, by hand): it is stored again, not referenced.
  const big = full.manifest.files.find((f) => f.path === 'base/1/big')!;
  rmSync(join(root, 'main/backup', FULL, (big.stored as { object: string }).object));
  const lost = await loadPrior(storage, rec);
  assert.deepEqual([...lost.files.keys()], ['base/1/small']);
  assert.equal(lost.missing, 1);
});
