// verify on a real posix repository (no server): a segment missing from the archive between
// backups breaks point-in-time recovery past it (info shows a gap, check fails, restore refuses),
// so verify reports it: one problem per gap, from the oldest backup's start on, on one timeline or
// where timelines meet; what expire left out between standalone backups is no problem.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, readdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
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
import { expiredHolesPath } from '../../src/repo/layout.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7300000000000000002';
const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
const seg = (t: number, n: number) => `${hex(t)}00000000${hex(n)}`;
const lsn = (n: number, off: number) => `0/${(n * SEG + off).toString(16).toUpperCase()}`;

async function stanza(dir: string) {
  const storage = new PosixStorage(dir);
  const repo = repositoryOn(storage, dir);
  const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
  const push = (name: string, data?: Buffer) => {
    const s = /^([0-9A-F]{8})[0-9A-F]{8}([0-9A-F]{8})/.exec(name);
    const body = data ?? walSegment({ segNo: parseInt(s![2]!, 16), segmentSize: SEG, systemId: SYSID, timeline: parseInt(s![1]!, 16) });
    // Stored minutes ago: a gap closed by a segment stored just now is taken for pushes out of order.
    return pushWalFile(repo, info, name, body, { compression: 'zstd' }).then((r) => {
      if (!/^[0-9A-F]{24}/.test(name)) return r;
      const sub = join(dir, 'main/archive', name.slice(0, 16));
      const old = new Date(Date.now() - 300_000);
      for (const f of readdirSync(sub)) if (f.startsWith(name)) utimesSync(join(sub, f), old, old);
      return r;
    });
  };
  /** A full backup on timeline 1 from segment `n`, ending in it. */
  const backup = async (id: string, n: number) => {
    const w = new BackupSetWriter({ storage, dir: `main/backup/${id}`, backupId: id, compression: 'none' });
    const data = Buffer.from('PG_VERSION 16\n');
    await w.addSmallFile({ path: 'PG_VERSION', size: data.length, mode: 0o600, mtime: 1_700_000_000 }, data);
    await w.finish();
    const t = `2026-12-0${id.slice(7, 8)}T00:00:00.000Z`;
    const r: BackupRecord = {
      format: 'pgpitr-backup', format_version: 1, id, type: 'full', state: 'complete', stanza: 'main', label: '', system_identifier: SYSID,
      pg_version_num: 160000, timeline: 1, start_lsn: lsn(n, 0x28), stop_lsn: lsn(n, 0x100), start_wal: null, stop_wal: null,
      start_time: t, stop_time: t, stop_next_xid: null, backup_from: 'primary', wal: 'archive', compression: 'none', size: 0, stored_size: 0,
      file_count: 1, databases: [], annotations: {}, pinned: false, process: { host: 'vm', pid: 1, start_ticks: null, boot_id: null }, error: null,
    };
    await writeRecord(storage, r);
  };
  const remove = (...names: string[]) => {
    for (const name of names) {
      const sub = join(dir, 'main/archive', name.slice(0, 16));
      for (const f of readdirSync(sub)) if (f.startsWith(name)) unlinkSync(join(sub, f));
    }
  };
  return { repo, push, backup, remove };
}

const summary = (r: Awaited<ReturnType<typeof verifyStanza>>) => r.problems.map((p) => `${p.scope} ${p.object}`);

test('verify: a gap closed by a segment stored less than a minute ago is passed (pushes in parallel store out of order)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-settling-'));
  try {
    const s = await stanza(dir);
    for (const n of [2, 3, 5]) await s.push(seg(1, n));
    await s.backup('20261201-000000F', 2);
    assert.deepEqual(summary(await verifyStanza(s.repo, 'main', SEG, { processMax: 1 })), [`archive ${seg(1, 4)}`]);
    const sub = join(dir, 'main/archive', seg(1, 5).slice(0, 16));
    for (const f of readdirSync(sub)) if (f.startsWith(seg(1, 5))) utimesSync(join(sub, f), new Date(), new Date());
    assert.deepEqual(summary(await verifyStanza(s.repo, 'main', SEG, { processMax: 1 })), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: a gap in the archive between backups is one problem per gap (first missing, how many, where WAL resumes); before the oldest backup it is none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-gaps-'));
  try {
    const s = await stanza(dir);
    for (let n = 1; n <= 0x20; n++) await s.push(seg(1, n));
    await s.backup('20261201-000000F', 0x10);
    await s.backup('20261202-000000F', 0x18);
    assert.deepEqual((await verifyStanza(s.repo, 'main', SEG, { processMax: 2 })).problems, []);

    s.remove(seg(1, 5), seg(1, 0x15), seg(1, 0x1a), seg(1, 0x1b));
    const r = await verifyStanza(s.repo, 'main', SEG, { processMax: 2 });
    assert.deepEqual(summary(r), [`archive ${seg(1, 0x15)}`, `archive ${seg(1, 0x1a)}`]);
    assert.deepEqual(r.archiveGaps, [
      { from: seg(1, 0x15), to: seg(1, 0x15), missing: 1, resumes: seg(1, 0x16) },
      { from: seg(1, 0x1a), to: seg(1, 0x1b), missing: 2, resumes: seg(1, 0x1c) },
    ]);
    assert.match(r.problems[1]!.problem, new RegExp(`WAL missing from the archive: ${seg(1, 0x1a)} to ${seg(1, 0x1b)} \\(2 segments\\), archived WAL resumes at ${seg(1, 0x1c)}`));
    // --set looks at that backup's range only.
    const one = await verifyStanza(s.repo, 'main', SEG, { processMax: 2, set: '20261202-000000F' });
    assert.deepEqual(one.problems, []);
    assert.deepEqual(one.archiveGaps, []);

    // What expire left out between standalone backups (its record of it) is no problem.
    writeFileSync(join(dir, expiredHolesPath('main')), JSON.stringify({ format: 'pgpitr-expired-wal', holes: [{ first: String(0x15), last: String(0x15), timeline: 1, at: '2026-12-03T00:00:00.000Z' }] }));
    assert.deepEqual(summary(await verifyStanza(s.repo, 'main', SEG, { processMax: 2 })), [`archive ${seg(1, 0x1a)}`]);

    // A gap reaching into the oldest backup's range: cut to what that backup needs, and the backup's own segment reported too.
    s.remove(seg(1, 0x0e), seg(1, 0x0f), seg(1, 0x10));
    const into = await verifyStanza(s.repo, 'main', SEG, { processMax: 2 });
    assert.deepEqual(summary(into), [`archive ${seg(1, 0x10)}`, `archive ${seg(1, 0x1a)}`, `20261201-000000F ${seg(1, 0x10)}`]);
    assert.deepEqual(into.archiveGaps[0], { from: seg(1, 0x10), to: seg(1, 0x10), missing: 1, resumes: seg(1, 0x11) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify: segments missing where a timeline\'s WAL meets its ancestor\'s are a gap along its history', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-tlgap-'));
  try {
    const s = await stanza(dir);
    // The primary lost 0B and 0C (never archived); its standby promoted in 0D.
    for (let n = 1; n <= 0x0a; n++) await s.push(seg(1, n));
    await s.push(`${seg(1, 0x0d)}.partial`, walSegment({ segNo: 0x0d, segmentSize: SEG, systemId: SYSID }));
    await s.push('00000002.history', Buffer.from(`1\t${lsn(0x0d, 0x100)}\tno recovery target specified\n`));
    for (let n = 0x0d; n <= 0x10; n++) await s.push(seg(2, n));
    await s.backup('20261201-000000F', 2);
    const r = await verifyStanza(s.repo, 'main', SEG, { processMax: 2 });
    assert.deepEqual(summary(r), [`archive ${seg(1, 0x0b)}`]);
    assert.deepEqual(r.archiveGaps, [{ from: seg(1, 0x0b), to: seg(1, 0x0c), missing: 2, resumes: seg(2, 0x0d), branch: 2 }]);
    assert.match(r.problems[0]!.problem, /\(2 segments along timeline 2's history\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
