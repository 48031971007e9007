// Repository pieces without a server: stored names, archive summaries with
// gaps, the configuration file, the WAL long page header, and the lock.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { storedName, parseStoredName, walFileKind, walFileSubdir } from '../../src/repo/layout.js';
import { summarizeArchive } from '../../src/repo/archive-summary.js';
import { parseConfig, configValue } from '../../src/common/config-file.js';
import { parseWalLongPageHeader, segmentNameMismatch } from '../../src/postgres/wal-page-header.js';
import { RepoLock } from '../../src/repo/lock.js';
import { currentPidNamespace, processIdentity } from '../../src/common/process-identity.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { parseTempName, isStaleTemp, DEAD_TEMP_AGE_MS, STALE_TEMP_AGE_MS } from '../../src/repo/archive-temp.js';

const SHA = 'a'.repeat(64);

test('stored names round-trip and reject temporary files', () => {
  const s = storedName('000000010000000000000003', SHA, '.zst');
  assert.deepEqual(parseStoredName(s), { name: '000000010000000000000003', sha256: SHA, extension: '.zst' });
  assert.equal(parseStoredName(`${s}.tmp-123`), null);
  assert.equal(walFileKind('00000002.history'), 'history');
  assert.equal(walFileKind('000000010000000000000003.00000028.backup'), 'backup');
  assert.equal(walFileKind('000000010000000000000003.partial'), 'partial');
  assert.equal(walFileKind('bogus'), null);
  assert.equal(walFileSubdir('000000010000000A00000003'), '000000010000000A');
  assert.equal(walFileSubdir('00000002.history'), '');
});

test('archive summary: min, max and gaps per timeline', () => {
  const f = (name: string, mtimeMs = 1) => ({ name, sha256: SHA, extension: '', size: 10, mtimeMs });
  const s = summarizeArchive(
    [f('000000010000000000000001'), f('000000010000000000000002'), f('000000010000000000000005', 5), f('000000010000000100000000'), f('00000002.history'), f('000000020000000100000000')],
    16 * 1024 * 1024,
  );
  assert.equal(s.timelines.length, 2);
  const t1 = s.timelines[0]!;
  assert.equal(t1.min, '000000010000000000000001');
  assert.equal(t1.max, '000000010000000100000000');
  assert.deepEqual(t1.gaps[0], { from: '000000010000000000000003', to: '000000010000000000000004', missing: 2 });
  assert.deepEqual(t1.gaps[1], { from: '000000010000000000000006', to: '0000000100000000000000FF', missing: 250 });
  assert.deepEqual(s.history_files, ['00000002.history']);
  assert.equal(s.last_archived?.name, '000000010000000000000005');
});

test('configuration file: sections, precedence, unknown keys', () => {
  const c = parseConfig('# comment\n[global]\nrepo=/r\ncompress-type=lz4\n\n[main]\ncompress-type=zstd\n', 'x.conf');
  assert.equal(configValue(c, 'main', 'compress-type'), 'zstd');
  assert.equal(configValue(c, 'other', 'compress-type'), 'lz4');
  assert.equal(configValue(c, 'main', 'repo'), '/r');
  assert.throws(() => parseConfig('[global]\nrepo-path=/x\n', 'x.conf'), /unknown setting "repo-path"/);
  // A passphrase's second line (base64, ending in '='): not shown.
  assert.throws(() => parseConfig('[global]\nrepo1-cipher-pass=\nq7Zp4lW9vXbR2mKc8sTn3yHf6dJ1aEgU0oIiLrPwS5Q=\n', 'x.conf'), (e: Error) => /x\.conf:3: unknown setting \(not shown: the line may hold a secret\)/.test(e.message) && !e.message.includes('q7Zp'));
  assert.throws(() => parseConfig('nonsense\n', 'x.conf'), /expected key=value/);
  // A secret written without '=' is never echoed (the message may land in the server's log).
  assert.throws(() => parseConfig('repo1-s3-key-secret wJalrXUtnFEMI\n', 'x.conf'), (e: Error) => /x\.conf:1: expected key=value for "repo1-s3-key-secret"/.test(e.message) && !e.message.includes('wJalr'));
  // Comments go on lines of their own: an inline one would be part of the value (a path elsewhere than meant).
  assert.throws(() => parseConfig('repo1-path=/mnt/backup  # nfs\n', 'x.conf'), /x\.conf:1: the value of "repo1-path" holds " #" or " ;"/);
  assert.equal(parseConfig('repo1-cipher-pass=correct horse # battery\n', 'x.conf').get('global')?.get('repo1-cipher-pass'), 'correct horse # battery');
});

test('WAL long page header', () => {
  const b = Buffer.alloc(8192);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(0x0002, 2);
  b.writeUInt32LE(1, 4);
  b.writeBigUInt64LE(0x3000000n, 8);
  b.writeBigUInt64LE(7441234567890123456n, 24);
  b.writeUInt32LE(16 * 1024 * 1024, 32);
  b.writeUInt32LE(8192, 36);
  assert.deepEqual(parseWalLongPageHeader(b), {
    magic: 0xd110,
    info: 2,
    timeline: 1,
    pageAddress: 0x3000000n,
    systemIdentifier: '7441234567890123456',
    segmentSize: 16 * 1024 * 1024,
    blockSize: 8192,
  });
  b.writeUInt16LE(0, 2);
  assert.equal(parseWalLongPageHeader(b), null);
});

test('lock: exclusive, stale locks taken over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-lock-'));
  try {
    const storage = new PosixStorage(dir);
    const a = await RepoLock.acquire(storage, 'repository.lock', 'test');
    await assert.rejects(() => RepoLock.acquire(storage, 'repository.lock', 'test'), /repository is locked by "test"/);
    await a.release();
    // A lock from a process that no longer exists on this host is stale (pids stay below 2^22).
    writeFileSync(join(dir, 'repository.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), command: 'old' }));
    await (await RepoLock.acquire(storage, 'repository.lock', 'test')).release();
    // A process killed while it wrote the lock left its temporary file: the next holder removes
    // it when that process is gone from this host, never a live one's.
    const dead = `repository.lock.tmp-${hostname()}-${2 ** 22 + 12345}-1`;
    const live = `repository.lock.tmp-${hostname()}-${process.pid}-999999`; // a counter this process never reaches
    writeFileSync(join(dir, dead), '{');
    writeFileSync(join(dir, live), '{');
    // Only once a minute old: a host name shared by containers makes a pid alive elsewhere look dead here.
    await (await RepoLock.acquire(storage, 'repository.lock', 'test')).release();
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')).sort(), [dead, live].sort());
    const longAgo = new Date(Date.now() - 120_000);
    for (const n of [dead, live]) utimesSync(join(dir, n), longAgo, longAgo);
    await (await RepoLock.acquire(storage, 'repository.lock', 'test')).release();
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), [live]);
    rmSync(join(dir, live));
    // A pid alive but now another process of this boot and pid namespace (its start time differs):
    // stale too. The same process: held. Another pid namespace (a container with the same host
    // name): its pid says nothing here, held.
    const me = processIdentity(process.pid)!;
    const ns = currentPidNamespace()!;
    const holder = (command: string, start: string, extra: object = {}) => JSON.stringify({ pid: process.pid, host: hostname(), command, start_ticks: start, boot_id: me.bootId, pid_ns: ns, ...extra });
    const earlier = String(Number(me.startTime) - 1);
    writeFileSync(join(dir, 'repository.lock'), holder('reused', earlier));
    await (await RepoLock.acquire(storage, 'repository.lock', 'test')).release();
    writeFileSync(join(dir, 'repository.lock'), holder('same', me.startTime));
    await assert.rejects(() => RepoLock.acquire(storage, 'repository.lock', 'test'), /locked by "same"/);
    writeFileSync(join(dir, 'repository.lock'), holder('container', earlier, { pid_ns: 'pid:[1]' }));
    await assert.rejects(() => RepoLock.acquire(storage, 'repository.lock', 'test'), /locked by "container"/);
    // Written before a reboot: gone, whoever has its pid now.
    writeFileSync(join(dir, 'repository.lock'), holder('other boot', me.startTime, { boot_id: 'another-boot' }));
    await (await RepoLock.acquire(storage, 'repository.lock', 'test')).release();
    // Another container's lock whose pid is free here: still cannot be judged, held.
    writeFileSync(join(dir, 'repository.lock'), holder('container, pid free here', earlier, { pid_ns: 'pid:[1]', pid: 2 ** 22 + 12345 }));
    await assert.rejects(() => RepoLock.acquire(storage, 'repository.lock', 'test'), /locked by "container, pid free here"/);
    // A lock written by this process records who it is.
    rmSync(join(dir, 'repository.lock'));
    const b = await RepoLock.acquire(storage, 'repository.lock', 'test');
    const written = JSON.parse(readFileSync(join(dir, 'repository.lock'), 'utf8')) as { start_ticks: string; pid_ns: string };
    assert.deepEqual([written.start_ticks, written.pid_ns], [me.startTime, ns]);
    await b.release();
    // One of another host is never taken over.
    writeFileSync(join(dir, 'repository.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: 'elsewhere', command: 'other' }));
    await assert.rejects(() => RepoLock.acquire(storage, 'repository.lock', 'test'), /locked by "other"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a segment header must match its file name: address exactly, timeline at most the name\'s', () => {
  const seg = 16 * 1024 * 1024;
  const header = (timeline: number, pageAddress: bigint) => ({ magic: 0xd110, info: 2, timeline, pageAddress, systemIdentifier: '1', segmentSize: seg, blockSize: 8192 });
  assert.equal(segmentNameMismatch('000000010000000200000003', header(1, 0x203000000n), seg), null);
  // The first segment of timeline 2 starts with what timeline 1 wrote there.
  assert.equal(segmentNameMismatch('000000020000000200000003', header(1, 0x203000000n), seg), null);
  assert.equal(segmentNameMismatch('000000020000000200000003.partial', header(2, 0x203000000n), seg), null);
  assert.equal(segmentNameMismatch('000000010000000200000004', header(1, 0x203000000n), seg), 'its first page header has page address 2/3000000, the name says 2/4000000');
  assert.equal(segmentNameMismatch('000000010000000200000003', header(2, 0x203000000n), seg), 'its first page header has timeline 2, the name says 1');
  assert.match(segmentNameMismatch('000000010000000000000001', header(1, 0x2000000n), 64 * 1024 * 1024)!, /page address 0\/2000000, the name says 0\/4000000/);
});

test('temporary files of the archive: stale when their process is gone from this host, or older than an hour', () => {
  const dead = () => false;
  const alive = () => true;
  const final = `000000010000000000000003-${SHA}.zst`;
  assert.deepEqual(parseTempName(`${final}.tmp-db-1.example-123-4`), { host: 'db-1.example', pid: 123 });
  assert.deepEqual(parseTempName(`${final}.tmp-123-4`), { host: null, pid: 123 });
  assert.equal(parseTempName(final), null);
  assert.equal(isStaleTemp(`${final}.tmp-db1-123-4`, DEAD_TEMP_AGE_MS, 'db1', dead), true);
  assert.equal(isStaleTemp(`${final}.tmp-db1-123-4`, 1000, 'db1', dead), false); // maybe another container's, with the same host name
  assert.equal(isStaleTemp(`${final}.tmp-db1-123-4`, 1000, 'db1', alive), false); // a live push
  assert.equal(isStaleTemp(`${final}.tmp-db2-123-4`, 1000, 'db1', dead), false); // another host's: only by age
  assert.equal(isStaleTemp(`${final}.tmp-123-4`, 1000, 'db1', dead), false); // the older form: only by age
  assert.equal(isStaleTemp(`${final}.tmp-db2-123-4`, STALE_TEMP_AGE_MS, 'db1', alive), true);
  assert.equal(isStaleTemp(`${final}.tmp-123-4`, STALE_TEMP_AGE_MS, 'db1', alive), true);
  assert.equal(isStaleTemp(final, STALE_TEMP_AGE_MS * 2, 'db1', dead), false);
  assert.equal(parseStoredName(`${final}.tmp-db1-123-4`), null);
});
