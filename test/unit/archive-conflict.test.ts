// Two pushes of one WAL file name with different content (two clusters
// archiving into one stanza after a split brain): never both succeed. A push
// that finds another copy after its own write fails; the copies left with
// different content make archive-get refuse the name rather than guess.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { archiveWalFile } from '../../src/wal/archive-wal-file.js';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fetchWalFile, listArchive, pushWalFile } from '../../src/repo/archive-store.js';
import { sha256 } from '../../src/repo/wal-digest.js';
import { stanzaReach } from '../../src/commands/stanza-reach.js';
import { storedName } from '../../src/repo/layout.js';
import { createStanza } from '../../src/repo/stanza.js';
import type { StanzaInfo } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import type { Repository } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import type { WriteOptions } from '../../src/storage/storage.js';
import { formatLsn, segmentFileName } from '../../src/postgres/lsn.js';
import type { Readable } from 'node:stream';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123457';

function segment(segNo: number, mark: string): Buffer {
  return walSegment({ segNo, segmentSize: SEG, systemId: SYSID, mark });
}

/**
 * A posix store where another push of the same name completes right after ours is written: after
 * the next write into the rival's directory (a push also writes its restore-point index entry
 * elsewhere, at the same time: that write must not be the one the rival follows).
 */
class RacedStorage extends PosixStorage {
  rival: { path: string; data: Buffer } | null = null;
  override async write(path: string, source: Buffer | AsyncIterable<Buffer> | Readable, opts?: WriteOptions): Promise<void> {
    await super.write(path, source, opts);
    const r = this.rival;
    if (r === null || dirname(path) !== dirname(r.path)) return;
    this.rival = null;
    await super.write(r.path, r.data, { atomic: true, sync: false });
  }
}

test('archive-push: one name, different content, never archived twice', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-conflict-'));
  try {
    mkdirSync(join(root, 'repo'));
    const storage = new RacedStorage(join(root, 'repo'));
    const repo = repositoryOn(storage, join(root, 'repo'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    const name = segmentFileName(1, 1n, SEG);
    const dir = join(root, 'repo', 'main', 'archive', name.slice(0, 16));
    const ours = segment(1, 'ours');
    const theirs = segment(1, 'theirs');
    const theirsStored = storedName(name, sha256(theirs), '');

    // The other cluster's push lands between our write and our check: ours fails, both copies stay
    // (ours is not taken back: a push of the same content may have reported it stored).
    storage.rival = { path: `main/archive/${name.slice(0, 16)}/${theirsStored}`, data: theirs };
    await assert.rejects(pushWalFile(repo, info, name, ours, { compression: 'none' }), (e: Error & { code?: string; detail?: string }) => {
      assert.equal(e.code, 'ERR_TARGET');
      assert.match(e.message, new RegExp(`WAL file "${name}" is already archived with different content`));
      assert.match(e.detail ?? '', new RegExp(theirsStored));
      return true;
    });
    const oursStored = storedName(name, sha256(ours), '');
    assert.deepEqual(readdirSync(dir).sort(), [oursStored, theirsStored].sort());
    // Neither push succeeds again, and archive-get refuses to guess, naming both copies.
    for (const data of [ours, theirs]) await assert.rejects(pushWalFile(repo, info, name, data, { compression: 'none' }), /already archived with different content/);
    await assert.rejects(fetchWalFile(repo, 'main', name), (e: Error & { code?: string; detail?: string; hint?: string }) => {
      assert.equal(e.code, 'ERR_STORAGE');
      assert.match(e.message, new RegExp(`WAL file "${name}" is archived 2 times with different content in stanza "main"`));
      assert.match(e.detail ?? '', new RegExp(oursStored));
      assert.match(e.detail ?? '', new RegExp(theirsStored));
      assert.match(e.hint ?? '', /two clusters archived into this stanza/);
      return true;
    });
    // info and check say it (the name counts as missing to them, as recovery stops there).
    assert.deepEqual((await stanzaReach(repo, 'main', SEG, await listArchive(repo, 'main'), [])).conflicting, [name]);
    // Once a person has moved the wrong copy out, the name is served, and only its content is accepted.
    unlinkSync(join(dir, oursStored));
    assert.deepEqual((await stanzaReach(repo, 'main', SEG, await listArchive(repo, 'main'), [])).conflicting, []);
    assert.ok((await fetchWalFile(repo, 'main', name))!.equals(theirs));
    assert.equal((await pushWalFile(repo, info, name, theirs, { compression: 'lz4' })).status, 'already-archived');
    await assert.rejects(pushWalFile(repo, info, name, ours, { compression: 'none' }), /already archived with different content/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** A scratch repository (on `storageOf`) holding stanza main of SYSID, removed afterwards. */
async function inScratchStanza(prefix: string, fn: (t: { root: string; repo: Repository; info: StanzaInfo }) => Promise<void>, storageOf = (dir: string) => new PosixStorage(dir)): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  try {
    mkdirSync(join(root, 'repo'));
    const repo = repositoryOn(storageOf(join(root, 'repo')), join(root, 'repo'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    await fn({ root, repo, info });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('archive-push: the same content already stored is answered only once its name is durable (a killed first push may not have synced its directory)', async () => {
  const synced: string[] = [];
  class CountingStorage extends PosixStorage {
    override async pathSync(path: string): Promise<void> {
      synced.push(path);
      await super.pathSync(path);
    }
  }
  await inScratchStanza('pgpitr-again-', async ({ repo, info }) => {
    const name = segmentFileName(1, 1n, SEG);
    assert.equal((await pushWalFile(repo, info, name, segment(1, 'x'), { compression: 'none' })).status, 'stored');
    synced.length = 0;
    assert.equal((await pushWalFile(repo, info, name, segment(1, 'x'), { compression: 'none' })).status, 'already-archived');
    assert.deepEqual(synced, [`main/archive/${name.slice(0, 16)}`, 'main/archive']);
  }, (dir) => new CountingStorage(dir));
});

test('archive-get: an archive directory that is a link leading nowhere (its disk not mounted) is an error, never "not in the archive"', async () => {
  await inScratchStanza('pgpitr-archlink-', async ({ root, repo }) => {
    const name = segmentFileName(1, 1n, SEG);
    const archive = join(root, 'repo', 'main', 'archive');
    renameSync(archive, join(root, 'elsewhere'));
    symlinkSync(join(root, 'elsewhere'), archive);
    assert.equal(await fetchWalFile(repo, 'main', name), null); // moved to another disk: followed
    rmSync(join(root, 'elsewhere'), { recursive: true });
    await assert.rejects(fetchWalFile(repo, 'main', name), (e: Error & { code?: string }) => e.code === 'ERR_STORAGE' && /is a link to something that does not exist/.test(e.message));
  });
});

test('archive-push: a history file from another cluster\'s pg_wal (its pg_control says so) is refused like its segments', async () => {
  await inScratchStanza('pgpitr-foreign-history-', async ({ root, repo, info }) => {
    const pgdata = (system: bigint) => {
      const d = mkdtempSync(join(root, 'pgdata-'));
      mkdirSync(join(d, 'global'));
      mkdirSync(join(d, 'pg_wal'));
      const control = Buffer.alloc(512);
      control.writeBigUInt64LE(system, 0);
      writeFileSync(join(d, 'global', 'pg_control'), control);
      writeFileSync(join(d, 'pg_wal', '00000002.history'), '1\t0/3000000\tno recovery target specified\n');
      return d;
    };
    const foreign = pgdata(7441234567890123999n);
    await assert.rejects(archiveWalFile(repo, info, join(foreign, 'pg_wal', '00000002.history'), { compression: 'none' }), /WAL file "00000002\.history" belongs to database system 7441234567890123999, stanza "main" is for system 7441234567890123457/);
    const own = pgdata(BigInt(SYSID));
    assert.equal((await archiveWalFile(repo, info, join(own, 'pg_wal', '00000002.history'), { compression: 'none' })).status, 'stored');
  });
});

test('archive-get: a log directory moved to a disk not mounted (a link to nothing) is an error, never "not archived"', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-conflict-'));
  try {
    mkdirSync(join(root, 'repo'));
    const repo = repositoryOn(new PosixStorage(join(root, 'repo')), join(root, 'repo'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
    const name = segmentFileName(1, 1n, SEG);
    await pushWalFile(repo, info, name, segment(1, 'x'), { compression: 'none' });
    const dir = join(root, 'repo', 'main', 'archive', name.slice(0, 16));
    renameSync(dir, join(root, 'elsewhere'));
    symlinkSync(join(root, 'not-mounted', name.slice(0, 16)), dir);
    await assert.rejects(fetchWalFile(repo, 'main', name), /list directory/);
    // Not there at all (no segment of that log archived yet): not archived.
    unlinkSync(dir);
    assert.equal(await fetchWalFile(repo, 'main', name), null);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('archive-push: a fork segment pushed under its full name with the content of the archived .partial is archived (black-box run S); other content after a fork is refused saying so', async () => {
  for (const directories of [true, false]) {
    const root = mkdtempSync(join(tmpdir(), 'pgpitr-fork-'));
    try {
      mkdirSync(join(root, 'repo'));
      const storage = new PosixStorage(join(root, 'repo'));
      // As object storage lists: by prefix only (the push lists NAME- and, here, NAME.partial-).
      if (!directories) Object.defineProperty(storage, 'features', { value: { ...storage.features, directories: false } });
      const repo = repositoryOn(storage, join(root, 'repo'));
      const { info } = await createStanza(repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG });
      const name = segmentFileName(1, 5n, SEG);
      const oldPrimary = segment(5, 'old primary went on after the failover');
      const promoted = segment(5, 'promoted server: timeline 1 up to the fork');
      await pushWalFile(repo, info, name, oldPrimary, { compression: 'none' });
      await pushWalFile(repo, info, `${name}.partial`, promoted, { compression: 'none' });
      // A cascading standby that followed the promotion marks the fork segment ready under its full name.
      const outcome = await pushWalFile(repo, info, name, promoted, { compression: 'lz4' });
      assert.equal(outcome.status, 'already-archived');
      assert.ok(outcome.status === 'already-archived' && outcome.forkSegment === true);
      assert.match(outcome.path, /\.partial-/);
      // The old primary's copy stays what archive-get gives for the name.
      assert.ok((await fetchWalFile(repo, 'main', name))!.equals(oldPrimary));
      // Content that is neither: refused, with the failover named.
      await assert.rejects(pushWalFile(repo, info, name, segment(5, 'a third history'), { compression: 'none' }), (e: Error & { hint?: string }) => {
        assert.match(e.message, /already archived with different content/);
        assert.match(e.hint ?? '', /a promotion ended this timeline in this segment \(the archive holds .*\.partial, from the promoted server\), and this server went on writing/);
        return true;
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
});

test('archive-push: the fork segment from a standby that followed the promotion, stale bytes past the fork, is answered as archived; the old primary\'s, with WAL past the fork, is refused (review of run S)', async () => {
  const { WalBuilder, filler, SEG: WSEG } = await import('../helpers/wal-builder.js');
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-forkwal-'));
  try {
    mkdirSync(join(root, 'repo'));
    const repo = repositoryOn(new PosixStorage(join(root, 'repo')), join(root, 'repo'));
    const { info } = await createStanza(repo, { stanza: 'main', system_identifier: '7', pg_major: 15, wal_segment_size: WSEG });
    const segNo = 5;
    const name = segmentFileName(1, BigInt(segNo), WSEG);
    // The old primary's segment: WAL all through it. The fork: where the promoted server's timeline 2 began.
    const w = new WalBuilder(BigInt(segNo * WSEG), 1);
    for (let i = 0; i < 4; i++) w.add(filler(3000));
    const fork = w.next();
    while (w.next() < BigInt((segNo + 1) * WSEG) - 4000n) w.add(filler(3000));
    w.closePages();
    const oldPrimary = Buffer.from(w.segment(0));
    // An older segment's WAL, what a recycled file holds past the fork in the standby's copy.
    const stale = new WalBuilder(BigInt(2 * WSEG), 1);
    while (stale.next() < BigInt(3 * WSEG) - 4000n) stale.add(filler(2000));
    stale.closePages();
    const upTo = Number(fork) - segNo * WSEG;
    const standby = Buffer.concat([oldPrimary.subarray(0, upTo), stale.segment(0).subarray(upTo)]);
    const fresh = Buffer.concat([oldPrimary.subarray(0, upTo), Buffer.alloc(WSEG - upTo)]);
    const history = Buffer.from(`1\t${formatLsn(fork)}\tno recovery target specified\n`);

    // Without the history file the fork is not known: refused as before.
    await pushWalFile(repo, info, name, oldPrimary, { compression: 'none' });
    await assert.rejects(pushWalFile(repo, info, name, standby, { compression: 'lz4' }), /already archived with different content/);
    await pushWalFile(repo, info, '00000002.history', history, { compression: 'none' });
    for (const copy of [standby, fresh]) {
      const outcome = await pushWalFile(repo, info, name, copy, { compression: 'lz4' });
      assert.ok(outcome.status === 'already-archived' && outcome.forkSegment === true);
      assert.match(outcome.path, new RegExp(`${name}-${sha256(oldPrimary)}`));
    }
    assert.ok((await fetchWalFile(repo, 'main', name))!.equals(oldPrimary));
    // Different before the fork: refused, naming the split brain.
    const changed = Buffer.from(standby);
    changed[upTo - 100] ^= 0xff;
    await assert.rejects(pushWalFile(repo, info, name, changed, { compression: 'none' }), (e: Error & { hint?: string }) => /\(an archived history file puts the fork there\), and this server went on writing the timeline after it \(split brain\)/.test(e.hint ?? ''));

    // The other order: the standby's copy archived first, the old primary's (WAL past the fork) refused.
    const other = mkdtempSync(join(tmpdir(), 'pgpitr-forkwal2-'));
    try {
      const repo2 = repositoryOn(new PosixStorage(other), other);
      const s2 = (await createStanza(repo2, { stanza: 'main', system_identifier: '7', pg_major: 15, wal_segment_size: WSEG })).info;
      await pushWalFile(repo2, s2, '00000002.history', history, { compression: 'none' });
      await pushWalFile(repo2, s2, name, standby, { compression: 'none' });
      await assert.rejects(pushWalFile(repo2, s2, name, oldPrimary, { compression: 'none' }), (e: Error & { hint?: string }) => /went on writing the timeline after it \(split brain\)/.test(e.hint ?? ''));
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
