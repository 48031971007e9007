// verify on a real posix repository (no server): a record that does not parse and a set with a
// manifest but no record are reported by path (the backup is out of info and restore: verify must
// not say "ok"); --set reads the WAL of that backup's range, so a damaged segment there is found;
// a compressed stored file that does not decompress is reported, and the file is closed.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { writeRecord } from '../../src/repo/backup-set/record.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';
import { BackupSetWriter } from '../../src/repo/backup-set/writer.js';
import { verifyStanza } from '../../src/commands/verify.js';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { walSegment } from '../helpers/wal-segment.js';
import { PgpitrError } from '../../src/common/errors.js';

const SEG = 16 * 1024 * 1024;
const SYSID = '7300000000000000001';

function record(id: string, over: Partial<BackupRecord> = {}): BackupRecord {
  const t = '2026-12-01T00:00:00.000Z';
  return {
    format: 'pgpitr-backup', format_version: 1, id, type: 'full', state: 'complete', stanza: 'main', label: '', system_identifier: SYSID,
    pg_version_num: 160000, timeline: 1, start_lsn: '0/1000028', stop_lsn: '0/1000100', start_wal: null, stop_wal: null,
    start_time: t, stop_time: t, stop_next_xid: null, backup_from: 'primary', wal: 'archive', compression: 'none', size: 0, stored_size: 0,
    file_count: 1, databases: [], annotations: {}, pinned: false, process: { host: 'vm', pid: 1, start_ticks: null, boot_id: null }, error: null,
    ...over,
  };
}

async function backupSet(storage: PosixStorage, id: string): Promise<void> {
  const w = new BackupSetWriter({ storage, dir: `main/backup/${id}`, backupId: id, compression: 'none' });
  const data = Buffer.from('PG_VERSION 16\n');
  await w.addSmallFile({ path: 'PG_VERSION', size: data.length, mode: 0o600, mtime: 1_700_000_000 }, data);
  await w.finish();
}

/** A posix repository in dir with stanza main and its segment 000000010000000000000001. */
async function stanzaWithSegment(dir: string) {
  const storage = new PosixStorage(dir);
  const repo = repositoryOn(storage, dir);
  const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
  await pushWalFile(repo, info, '000000010000000000000001', walSegment({ segNo: 1, segmentSize: SEG, systemId: SYSID }), { compression: 'none' });
  return { storage, repo, info };
}

test('verify: a damaged record, a set without a record, and (with --set) a damaged segment of the backup\'s range are reported by path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-'));
  try {
    const { storage, repo } = await stanzaWithSegment(dir);
    for (const id of ['20261201-000000F', '20261202-000000F', '20261203-000000F']) {
      await backupSet(storage, id);
      await writeRecord(storage, record(id));
    }
    const clean = await verifyStanza(repo, 'main', SEG, { processMax: 2 });
    assert.deepEqual(clean.problems, []);

    writeFileSync(join(dir, 'main/backup/20261202-000000F/backup.json'), '{ "format": "pgpitr-back');
    unlinkSync(join(dir, 'main/backup/20261203-000000F/backup.json'));
    const r = await verifyStanza(repo, 'main', SEG, { processMax: 2 });
    assert.deepEqual(r.problems.map((p) => p.object).sort(), [`"${dir}/main/backup/20261202-000000F/backup.json"`, `"${dir}/main/backup/20261203-000000F/backup.json"`]);
    assert.match(r.problems.find((p) => p.scope === '20261203-000000F')!.problem, /has a manifest but no record/);
    // The set whose record is damaged is read all the same (through its manifest): putting its record back would do.
    assert.ok(r.backups.some((x) => x.id === '20261202-000000F' && x.files > 0), JSON.stringify(r.backups));
    const one = await verifyStanza(repo, 'main', SEG, { processMax: 2, set: '20261202-000000F' });
    assert.equal(one.problems.length, 1);
    assert.doesNotMatch(one.problems[0]!.problem, /no complete backup/);

    // --set reads the backup's WAL: a flipped byte in its segment is found.
    const segDir = join(dir, 'main/archive/0000000100000000');
    const stored = join(segDir, readdirSync(segDir)[0]!);
    const b = readFileSync(stored);
    b[100] ^= 1;
    writeFileSync(stored, b);
    const walCheck = await verifyStanza(repo, 'main', SEG, { processMax: 2, set: '20261201-000000F' });
    assert.equal(walCheck.walFiles, 1);
    assert.deepEqual(walCheck.problems.map((p) => p.object), ['000000010000000000000001']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: an incr whose manifest entry of a file taken from its full is damaged (its digest) is reported, though the full\'s read of the same bytes was good', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-incr-'));
  try {
    const { storage, repo } = await stanzaWithSegment(dir);
    const FULL = '20261201-000000F';
    const INCR = '20261202-000000I';
    const data = Buffer.alloc(200_000, 7);
    const meta = { path: 'base/1/1234', size: data.length, mode: 0o600, mtime: 1_700_000_000 };
    const { Readable } = await import('node:stream');
    const full = new BackupSetWriter({ storage, dir: `main/backup/${FULL}`, backupId: FULL, compression: 'none' });
    await full.addLargeFile(meta, Readable.from([data]));
    const fm = await full.finish();
    await writeRecord(storage, record(FULL, { file_count: 1 }));
    const incr = new BackupSetWriter({ storage, dir: `main/backup/${INCR}`, backupId: INCR, compression: 'none', prior: { id: FULL, files: new Map(fm.files.map((f) => [f.path, f])), modifiedBefore: 1_800_000_000 } });
    const same = incr.unchanged(meta);
    assert.ok(same);
    incr.reference(meta, same);
    await incr.finish();
    await writeRecord(storage, record(INCR, { type: 'incr', prior: FULL, references: [FULL], start_time: '2026-12-02T00:00:00.000Z', stop_time: '2026-12-02T00:00:00.000Z' }));
    assert.deepEqual((await verifyStanza(repo, 'main', SEG, { processMax: 1 })).problems, []);

    const path = join(dir, `main/backup/${INCR}/manifest.json`);
    const original = readFileSync(path);
    const m = JSON.parse(readFileSync(path, 'utf8')) as { files: { xxh128?: string }[] };
    const digest = m.files[0]!.xxh128!;
    m.files[0]!.xxh128 = `${digest[0] === '0' ? '1' : '0'}${digest.slice(1)}`;
    writeFileSync(path, JSON.stringify(m));
    const r = await verifyStanza(repo, 'main', SEG, { processMax: 1 });
    assert.deepEqual(r.problems.map((p) => p.scope), [INCR]);

    // The full removed by hand: one problem says why the incr cannot be restored, not one per file.
    writeFileSync(path, original);
    rmSync(join(dir, `main/backup/${FULL}`), { recursive: true });
    const gone = await verifyStanza(repo, 'main', SEG, { processMax: 1 });
    assert.deepEqual(gone.problems.map((p) => p.problem), [`backup ${INCR} takes 1 file(s) from backup ${FULL}, which is not a complete backup of the stanza (those files are not read)`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: a backup stopping on a segment boundary needs the segments before it, not the one that starts there (a restore without a target ends at the stop)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-boundary-'));
  try {
    const { storage, repo, info } = await stanzaWithSegment(dir);
    // A standby's backup whose last replayed record was the primary's WAL switch: it stops at 0/2000000.
    const id = '20261201-000000F';
    await backupSet(storage, id);
    await writeRecord(storage, record(id, { start_lsn: '0/1000028', stop_lsn: '0/2000000', backup_from: 'standby' }));
    assert.deepEqual((await verifyStanza(repo, 'main', SEG, { processMax: 1 })).problems, []);
    await pushWalFile(repo, info, '000000010000000000000002', walSegment({ segNo: 2, segmentSize: SEG, systemId: SYSID }), { compression: 'none' });
    assert.deepEqual((await verifyStanza(repo, 'main', SEG, { processMax: 1 })).problems, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: a backup\'s WAL is looked for on the timeline replay reads it from, and a history file restore needs is reported when missing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-timelines-'));
  try {
    const storage = new PosixStorage(dir);
    const repo = repositoryOn(storage, dir);
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    const push = (name: string, data: Buffer) => pushWalFile(repo, info, name, data, { compression: 'none' });
    await push('000000010000000000000001', walSegment({ segNo: 1, segmentSize: SEG, systemId: SYSID }));
    // A standby's backup on timeline 1 stopping in segment 2, where timeline 2 began a moment later
    // (another node promoted): timeline 1's copy of segment 2 is only a .partial, replay reads timeline 2's.
    const id = '20261201-000000F';
    await backupSet(storage, id);
    await writeRecord(storage, record(id, { start_lsn: '0/1000028', stop_lsn: '0/2000100', backup_from: 'standby' }));
    await push('000000010000000000000002.partial', walSegment({ segNo: 2, segmentSize: SEG, systemId: SYSID }));
    await push('00000002.history', Buffer.from('1\t0/2000200\tno recovery target specified\n'));
    await push('000000020000000000000002', walSegment({ segNo: 2, segmentSize: SEG, systemId: SYSID, timeline: 2 }));
    assert.deepEqual((await verifyStanza(repo, 'main', SEG, { processMax: 1 })).problems, []);
    assert.deepEqual((await verifyStanza(repo, 'main', SEG, { processMax: 1, set: id })).problems, []);

    // A primary's backup on timeline 2 whose WAL is archived, in a stanza that lost 00000002.history
    // (or never had it: promoted before archiving was set up): restore's defaults refuse.
    const lost = mkdtempSync(join(tmpdir(), 'pgpitr-verify-nohistory-'));
    try {
      const s2 = new PosixStorage(lost);
      const repo2 = repositoryOn(s2, lost);
      const made = await createStanza(repo2, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
      await pushWalFile(repo2, made.info, '000000020000000000000005', walSegment({ segNo: 5, segmentSize: SEG, systemId: SYSID, timeline: 2 }), { compression: 'none' });
      await backupSet(s2, id);
      await writeRecord(s2, record(id, { timeline: 2, start_lsn: '0/5000028', stop_lsn: '0/5000100' }));
      const r = await verifyStanza(repo2, 'main', SEG, { processMax: 1 });
      assert.deepEqual(r.problems.map((p) => `${p.scope} ${p.object}`), ['archive 00000002.history']);
      assert.match(r.problems[0]!.problem, /history file 00000002\.history is not in the archive, but a backup is on timeline 2/);
      // Timeline 3's history file (which names timeline 2's fork) is enough for restore's defaults: 00000002.history lost is no problem.
      await pushWalFile(repo2, made.info, '00000003.history', Buffer.from('1\t0/3000000\tno recovery target specified\n2\t0/6000000\tno recovery target specified\n'), { compression: 'none' });
      assert.deepEqual((await verifyStanza(repo2, 'main', SEG, { processMax: 1 })).problems, []);
    } finally {
      rmSync(lost, { recursive: true, force: true });
    }

    // Timeline 1's whole segment 2 archived, but not timeline 2's, which replay reads: restore's defaults fail there.
    const seg2tl2 = join(dir, 'main/archive/0000000200000000');
    for (const f of readdirSync(seg2tl2)) if (f.startsWith('000000020000000000000002')) unlinkSync(join(seg2tl2, f));
    await push('000000010000000000000002', walSegment({ segNo: 2, segmentSize: SEG, systemId: SYSID }));
    const gap = await verifyStanza(repo, 'main', SEG, { processMax: 1 });
    assert.deepEqual(gap.problems.map((p) => p.object), ['000000020000000000000002']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: a store out of reach, or a file it may not read, fails the command; it is not reported as damage', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-'));
  try {
    const { storage, repo } = await stanzaWithSegment(dir);
    await backupSet(storage, '20261201-000000F');
    await writeRecord(storage, record('20261201-000000F'));
    for (const [why, failure] of [
      ['lost', new PgpitrError('ERR_CONNECTION_LOST', 'the object store kept failing')],
      ['refused', Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })],
    ] as const) {
      // Reads of the set's data fail; its manifest and record read as before.
      const failing = Object.assign(Object.create(Object.getPrototypeOf(storage) as object) as PosixStorage, storage, {
        read: (path: string) => (/\/data\//.test(path) || /bundle/.test(path) ? Promise.reject(failure) : storage.read(path)),
      });
      await assert.rejects(verifyStanza(repositoryOn(failing, dir), 'main', SEG, { processMax: 2 }), (e: Error) => e === failure, why);
    }
    // Read as it is, nothing to report.
    assert.deepEqual((await verifyStanza(repo, 'main', SEG, { processMax: 2 })).problems, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: a compressed stored file that does not decompress is reported by its path, once quoted whole, and its file is closed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-zstd-'));
  try {
    const { storage } = await stanzaWithSegment(dir);
    const id = '20261201-000000F';
    const { Readable } = await import('node:stream');
    const w = new BackupSetWriter({ storage, dir: `main/backup/${id}`, backupId: id, compression: 'zstd' });
    await w.addLargeFile({ path: 'base/5/16399', size: 3_000_000, mode: 0o600, mtime: 1_700_000_000 }, Readable.from([Buffer.alloc(3_000_000, 7)]));
    await w.finish();
    await writeRecord(storage, record(id, { compression: 'zstd' }));
    // Bytes that are no zstd frame, more than one read's worth: the decoder fails with the file still open.
    const stored = join(dir, `main/backup/${id}/data/base/5/16399.zst`);
    writeFileSync(stored, Buffer.alloc(3 * 1024 * 1024, 0x41));
    const opened: import('node:stream').Readable[] = [];
    const watched = Object.assign(Object.create(Object.getPrototypeOf(storage) as object) as PosixStorage, storage, {
      read: async (path: string, opts?: Parameters<PosixStorage['read']>[1]) => {
        const r = await storage.read(path, opts);
        if (r !== null && path.endsWith('16399.zst')) opened.push(r);
        return r;
      },
    });
    const r = await verifyStanza(repositoryOn(watched, dir), 'main', SEG, { processMax: 1 });
    assert.deepEqual(r.problems.map((p) => p.object), [`"${stored}"`]);
    assert.match(r.problems[0]!.problem, new RegExp(`^stored file "${stored.replace(/[.]/g, '\\.')}" of "base/5/16399" is damaged`));
    assert.equal(opened.length, 1);
    assert.equal(opened[0]!.destroyed, true, 'the stored file was left open');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
