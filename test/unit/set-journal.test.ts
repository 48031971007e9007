// A backup set's copy journal (backup --resume): batches are read back in
// order, the last entry of a path wins, a torn or damaged batch is ignored as
// a whole; the set writer journals only what is durable, keeps a copy only
// when its stored bytes check, numbers new bundles after the old ones and
// removes the old objects it did not keep. And which backup --resume takes.

import { test, after } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { BackupSetWriter } from '../../src/repo/backup-set/writer.js';
import { BackupSetReader } from '../../src/repo/backup-set/reader.js';
import { batchName, parseBatch, readSetJournal, serializeBatch, SetJournalWriter } from '../../src/repo/backup-set/set-journal.js';
import type { SetJournalEntry } from '../../src/repo/backup-set/set-journal.js';
import { chooseResumable, versionProblem } from '../../src/backup/repo/resume-choice.js';
import type { BackupRecord } from '../../src/repo/backup-set/record.js';

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function tempStorage(): { root: string; storage: PosixStorage } {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-journal-'));
  roots.push(root);
  return { root, storage: new PosixStorage(root) };
}

function entry(path: string, digest = 'a'.repeat(32)): SetJournalEntry {
  return { path, size: 10, mtime_us: 1, started_us: 3_000_000, xxh128: digest, stored: { object: `data/${path}` }, stored_bytes: 10 };
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 9)) & 0xff;
  return b;
}

test('a batch reads back; torn, damaged, foreign or unsafe batches vouch for nothing', () => {
  const good = serializeBatch(1, [entry('base/1/1')]);
  assert.deepEqual(parseBatch(good), [entry('base/1/1')]);
  assert.equal(parseBatch(good.subarray(0, good.length - 20)), null, 'torn');
  const text = good.toString();
  assert.equal(parseBatch(text.replace('base/1/1', 'base/1/2')), null, 'entries that do not match their SHA-256');
  assert.equal(parseBatch(text.replace('"format_version":2', '"format_version":1')), null, 'another format (version 1 recorded SHA-256)');
  assert.equal(parseBatch(serializeBatch(1, [entry('../etc/passwd')])), null, 'an unsafe path');
  assert.equal(parseBatch(serializeBatch(1, [{ ...entry('x'), stored: { object: 'manifest.json' } }])), null, 'an object outside data/');
  assert.equal(parseBatch(serializeBatch(1, [{ ...entry('x'), xxh128: 'nothex' }])), null, 'no XXH3-128');
  assert.equal(parseBatch(''), null);
});

test('readSetJournal: batches in number order, the last entry of a path wins, a torn last batch is ignored', async () => {
  const { root, storage } = tempStorage();
  const dir = join(root, 'set', 'journal');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(root, 'set', batchName(2)), serializeBatch(2, [entry('b', 'c'.repeat(32)), entry('c')]));
  writeFileSync(join(root, 'set', batchName(1)), serializeBatch(1, [entry('a'), entry('b', 'b'.repeat(32))]));
  const torn = serializeBatch(3, [entry('d')]);
  writeFileSync(join(root, 'set', batchName(3)), torn.subarray(0, torn.length >> 1));
  writeFileSync(join(dir, 'stray.tmp'), 'x');
  const j = await readSetJournal(storage, 'set');
  assert.deepEqual([...j.entries.keys()].sort(), ['a', 'b', 'c']);
  assert.equal(j.entries.get('b')!.xxh128, 'c'.repeat(32));
  assert.equal(j.lastBatch, 3, 'a new run numbers after the torn batch too');
  assert.equal(j.ignored, 1);
  const none = await readSetJournal(storage, 'nothing');
  assert.equal(none.entries.size, 0);
  assert.equal(none.lastBatch, 0);
});

test('SetJournalWriter writes a batch once enough entries wait, and what is left on flush', async () => {
  const { storage } = tempStorage();
  const w = new SetJournalWriter(storage, 'set', 4, { maxEntries: 2, maxDelayMs: 60_000 });
  w.add(entry('a'));
  w.add(entry('b'));
  w.add(entry('c'));
  await w.flush();
  w.close();
  const j = await readSetJournal(storage, 'set');
  assert.equal(j.lastBatch, 6);
  assert.equal(j.entries.size, 3);
  assert.equal(w.written, 3);
});

async function firstRun(storage: PosixStorage, compression: 'none' | 'zstd') {
  const journal = new SetJournalWriter(storage, 'set', 0, { maxDelayMs: 60_000 });
  const w = new BackupSetWriter({ storage, dir: 'set', backupId: 'X', compression, bundleFileMax: 1000, bundleSize: 2000, parallel: 2, journal });
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 7; i++) {
    const data = randomBytes(700); // incompressible: the bundles fill as with no compression
    files.set(`base/1/${i}`, data);
    await w.addSmallFile({ path: `base/1/${i}`, size: data.length, mode: 0o600, mtime: 1, resumable: { mtimeUs: 1_000_000, startedUs: 5_000_000 } }, data);
  }
  // Not journaled: no resumable facts (a file through the tar stream).
  await w.addSmallFile({ path: 'global/pg_control', size: 5, mode: 0o600, mtime: 1 }, Buffer.from('ctrl!'));
  for (let i = 0; i < 2; i++) {
    const data = pattern(50_000, 10 + i);
    files.set(`base/1/big${i}`, data);
    await w.addLargeFile({ path: `base/1/big${i}`, size: data.length, mode: 0o600, mtime: 1, resumable: { mtimeUs: 1_000_000, startedUs: 5_000_000 } }, Readable.from([data]));
  }
  // "Killed" now: what is durable is journaled, the last bundle (never written) is not.
  await w.abort();
  return files;
}

for (const compression of ['none', 'zstd'] as const) {
  test(`a resumed set writer (${compression}) keeps copies that check, renumbers bundles and sweeps the rest`, async () => {
    const { root, storage } = tempStorage();
    const files = await firstRun(storage, compression);
    const j = await readSetJournal(storage, 'set');
    // The bundles that filled and both large files; not the unwritten last bundle nor pg_control.
    assert.ok(j.entries.has('base/1/big0') && j.entries.has('base/1/big1'));
    assert.ok(!j.entries.has('global/pg_control'));
    assert.ok(!j.entries.has('base/1/6'), 'the last bundle was never written: its files are not journaled');
    for (const e of j.entries.values()) if ('bundle' in e.stored) assert.ok(existsSync(join(root, 'set', 'bundle', `${e.stored.bundle}${compression === 'zstd' ? '.zst' : ''}`)));
    const bundlesBefore = readdirSync(join(root, 'set', 'bundle'));
    // Damage one stored large file: it must not be kept.
    const ext = compression === 'zstd' ? '.zst' : '';
    const big1 = join(root, 'set', 'data', 'base', '1', `big1${ext}`);
    const bytes = readFileSync(big1);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(big1, bytes);
    writeFileSync(join(root, 'set', 'data', 'base', '1', '.stray.tmp'), 'half-written by the killed run');
    writeFileSync(join(root, 'set', 'manifest.json'), 'the manifest of a run that failed waiting for its WAL');

    const journal = new SetJournalWriter(storage, 'set', j.lastBatch, { maxDelayMs: 60_000 });
    const w = new BackupSetWriter({ storage, dir: 'set', backupId: 'X', compression, bundleFileMax: 1000, bundleSize: 2000, parallel: 2, journal, resume: { previous: j.entries, firstBundle: bundlesBefore.length } });
    let kept = 0;
    for (const [path, data] of files) {
      const prev = w.previous(path);
      const meta = { path, size: data.length, mode: 0o600, mtime: 2, resumable: { mtimeUs: 1_000_000, startedUs: 9_000_000 } };
      if (prev && (await w.keep(meta, prev))) {
        kept++;
        continue;
      }
      if (data.length <= 1000) await w.addSmallFile(meta, data);
      else await w.addLargeFile(meta, Readable.from([data]));
    }
    await w.addSmallFile({ path: 'global/pg_control', size: 5, mode: 0o600, mtime: 1 }, Buffer.from('ctrl!'));
    const m = await w.finish();
    assert.equal(kept, j.entries.size - 1, 'every journaled copy but the damaged one');
    assert.equal(w.kept.files, kept);
    // New bundles only after the old ones; no old object is written over.
    for (const f of m.files) if ('bundle' in f.stored && !j.entries.has(f.path)) assert.ok(f.stored.bundle >= bundlesBefore.length, f.path);
    assert.ok(!existsSync(join(root, 'set', 'data', 'base', '1', '.stray.tmp')), 'the stray object is swept');
    // Everything reads back, and the set holds no object the manifest does not name.
    const reader = await BackupSetReader.open(storage, 'set');
    for (const f of reader.manifest.files) {
      const chunks: Buffer[] = [];
      for await (const c of await reader.read(f)) chunks.push(c as Buffer);
      assert.deepEqual(Buffer.concat(chunks), files.get(f.path) ?? Buffer.from('ctrl!'));
    }
    const named = new Set(m.files.map((f) => ('object' in f.stored ? f.stored.object : `bundle/${f.stored.bundle}${ext}`)));
    const onDisk = [...readdirSync(join(root, 'set', 'bundle')).map((n) => `bundle/${n}`), ...readdirSync(join(root, 'set', 'data', 'base', '1')).map((n) => `data/base/1/${n}`)];
    assert.deepEqual(onDisk.filter((n) => !named.has(n)), []);
  });
}

test('a journaled frame index is kept only with the object it was made for (its stored size, offsets within it)', async () => {
  const { storage } = tempStorage();
  const files = await firstRun(storage, 'zstd');
  const j = await readSetJournal(storage, 'set');
  const w = new BackupSetWriter({ storage, dir: 'set', backupId: 'X', compression: 'zstd', bundleFileMax: 1000, bundleSize: 2000, parallel: 2, resume: { previous: j.entries, firstBundle: 100 } });
  const data = files.get('base/1/big0')!;
  const meta = { path: 'base/1/big0', size: data.length, mode: 0o600, mtime: 2, resumable: { mtimeUs: 1_000_000, startedUs: 9_000_000 } };
  const prev = w.previous('base/1/big0')!;
  // The object written again under that name since (another level): its size is not the journal's.
  assert.equal(await w.keep(meta, { ...prev, index: { every: 1000, stored: [10] }, stored_bytes: prev.stored_bytes + 1 }), false);
  assert.equal(await w.keep(meta, { ...prev, index: { every: 1000, stored: [prev.stored_bytes] } }), false);
  assert.equal(await w.keep(meta, { ...prev, index: { every: 1000, stored: [10] } }), true);
});

test('a set writer aborted stores nothing more (a parallel backup\'s other readers go on until their next write), nor journals it', async () => {
  const { root, storage } = tempStorage();
  const journal = new SetJournalWriter(storage, 'set', 0, { maxDelayMs: 10 });
  const w = new BackupSetWriter({ storage, dir: 'set', backupId: 'X', compression: 'none', bundleFileMax: 1000, bundleSize: 2000, parallel: 1, journal });
  // A write holding the only slot while the backup fails; a reader waits for the slot.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const slow = Readable.from((async function* () {
    await held;
    yield Buffer.alloc(5000, 1);
  })());
  const first = w.addLargeFile({ path: 'base/1/a', size: 5000, mode: 0o600, mtime: 1, resumable: { mtimeUs: 1, startedUs: 2 } }, slow);
  const late = w.addLargeFile({ path: 'base/1/b', size: 5000, mode: 0o600, mtime: 1, resumable: { mtimeUs: 1, startedUs: 2 } }, Readable.from([Buffer.alloc(5000, 2)]));
  const aborted = w.abort();
  release();
  await first.catch(() => undefined);
  await assert.rejects(late, /nothing more is stored/);
  await aborted;
  const stored = existsSync(join(root, 'set', 'data', 'base', '1')) ? readdirSync(join(root, 'set', 'data', 'base', '1')) : [];
  assert.deepEqual(stored.filter((n) => n.startsWith('b')), []);
  // The journal, closed, takes no entry and starts no timer.
  journal.add(entry('base/1/c'));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await readSetJournal(storage, 'set')).entries.has('base/1/c'), false);
});

function record(over: Partial<BackupRecord>): BackupRecord {
  return {
    format: 'pgpitr-backup', format_version: 1, id: '20261201-100000F', type: 'full', state: 'failed', stanza: 'main', label: '', system_identifier: '7',
    pg_version_num: 150004, timeline: null, start_lsn: null, stop_lsn: null, start_wal: null, stop_wal: null, start_time: '', stop_time: null,
    stop_next_xid: null, backup_from: null, wal: 'archive', compression: 'zstd', size: null, stored_size: null, file_count: null, databases: [],
    annotations: {}, pinned: false, process: { host: 'h', pid: 1, start_ticks: null, boot_id: null }, error: null, ...over,
  };
}

test('--resume takes only the newest backup, failed or interrupted, of the same cluster, version and compression', () => {
  const want = { systemIdentifier: '7', compression: 'zstd' as const, alive: (r: BackupRecord) => r.process.pid === 42 };
  const older = record({ id: '20261201-090000F', state: 'failed' });
  assert.ok('resume' in chooseResumable([record({ state: 'failed' })], want));
  assert.ok('resume' in chooseResumable([record({ state: 'running' })], want), 'interrupted: its process is gone');
  assert.match((chooseResumable([], want) as { reason: string }).reason, /no backup yet/);
  assert.match((chooseResumable([older, record({ state: 'complete' })], want) as { reason: string }).reason, /newest backup, 20261201-100000F, is complete/);
  assert.match((chooseResumable([record({ state: 'running', process: { host: 'h', pid: 42, start_ticks: null, boot_id: null } })], want) as { reason: string }).reason, /still running \(pid 42/);
  assert.match((chooseResumable([record({ system_identifier: '8' })], want) as { reason: string }).reason, /another cluster/);
  assert.match((chooseResumable([record({ compression: 'lz4' })], want) as { reason: string }).reason, /compression lz4, this backup uses zstd/);
  assert.equal(versionProblem(record({}), 150004), null);
  assert.match(versionProblem(record({}), 150005)!, /PostgreSQL 150004, the server now runs 150005/);
  assert.match(versionProblem(record({ pg_version_num: 0 }), 150005)!, /unknown version/);
});
