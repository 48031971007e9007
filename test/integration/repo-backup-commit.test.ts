// The record saying "complete" is a repository backup's commit point. Its write may fail as far
// as the storage says and have landed all the same. On an object store (its answer lost) what
// reads back complete is: the backup is complete. On a file system (a directory sync failing after
// the rename) it may not survive a crash: the backup is marked failed, its files kept. Not landed,
// the record says failed and nothing is removed either (a PUT may land yet), but for a full file
// system, where what the backup stored goes so that archiving can go on: a record can never read
// complete over a set whose files went.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv } from '../helpers/pgpitr.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { readStanza } from '../../src/repo/stanza.js';
import { readRecord, writeRecord } from '../../src/repo/backup-set/record.js';
import { verifyStanza } from '../../src/commands/verify.js';
import { backupToRepository } from '../../src/backup/repo/repo-backup.js';
import type { BackupReporter } from '../../src/backup/reporter.js';
import { resolveConnectionSettings } from '../../src/protocol/conninfo.js';
import type { Storage, WriteOptions } from '../../src/storage/storage.js';

/**
 * The posix driver, whose write of a record saying complete fails as `how` says: landed (on an
 * object store: the answer lost, the object there; modelled as a driver without pathSync),
 * unsynced (on a file system: renamed, its directory sync failing), lost (EIO before the rename),
 * full (ENOSPC before the rename).
 */
function failingCommit(root: string, how: 'landed' | 'unsynced' | 'lost' | 'full'): Storage {
  const storage = new PosixStorage(root);
  const write = storage.write.bind(storage);
  storage.write = async (path: string, source: Parameters<Storage['write']>[1], opts?: WriteOptions) => {
    if (path.endsWith('/backup.json') && Buffer.isBuffer(source) && source.includes('"state": "complete"')) {
      if (how === 'landed' || how === 'unsynced') await write(path, source, opts);
      if (how === 'full') throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    }
    return write(path, source, opts);
  };
  if (how === 'landed') (storage as { pathSync?: unknown }).pathSync = undefined;
  return storage;
}

/** `backup --stanza main --wal included --start-fast` run in this process on `storage` (the repository at `dir`); its warnings are kept. */
async function backupHere(storage: Storage, dir: string, env: NodeJS.ProcessEnv) {
  const warnings: string[] = [];
  const reporter: BackupReporter = { progress: () => {}, info: () => {}, warn: (m) => warnings.push(m), serverNotice: () => {} };
  const repo = repositoryOn(storage, dir);
  const req = {
    repo, stanza: await readStanza(repo, 'main'), connection: resolveConnectionSettings({}, { ...process.env, ...env }),
    compression: 'zstd' as const, walIncluded: true, fastCheckpoint: true, progress: false, annotations: {}, processMax: 1,
    archiveTimeoutMs: 60_000, archivedAmong: async () => new Set<string>(), identity: { start_ticks: null, boot_id: null },
  };
  return { run: () => backupToRepository(req, reporter), warnings };
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`a failed write of the complete record: landed on an object store, the backup is complete; renamed but not synced on a file system, failed; lost, failed and keeps its files; lost to a full repository, its files go (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `commit${version}` });
    await src.sql('create table t as select g from generate_series(1, 10000) g');
    const env = clusterEnv(src);
    for (const how of ['landed', 'unsynced', 'lost', 'full'] as const) {
      const dir = src.tempDir(`repo-${how}`);
      const made = await runPgpitr(['stanza-create', '--repo', dir, '--stanza', 'main'], env);
      assert.equal(made.code, 0, made.stderr);
      const { run, warnings } = await backupHere(failingCommit(dir, how), dir, env);
      const backup = run();
      if (how === 'landed') {
        const record = await backup;
        assert.equal(record.state, 'complete');
        assert.match(warnings.join('\n'), /reads back complete/);
        const v = await verifyStanza(repositoryOn(new PosixStorage(dir), dir), 'main', 16 * 1024 * 1024, { processMax: 1 });
        assert.deepEqual(v.problems, []);
      } else if (how === 'unsynced') {
        // Reads complete from the page cache, but may not survive a crash: marked failed, its files kept.
        await assert.rejects(backup, /EIO/);
        assert.match(warnings.join('\n'), /reads complete, but it could not be made durable \(EIO: i\/o error, fsync\): it is marked failed/);
        const id = readdirSync(join(dir, 'main', 'backup'))[0]!;
        assert.equal((await readRecord(new PosixStorage(dir), 'main', id))?.state, 'failed');
        assert.ok(readdirSync(join(dir, 'main', 'backup', id)).includes('bundle'), 'what it stored is kept');
      } else {
        await assert.rejects(backup, how === 'lost' ? /EIO/ : /ENOSPC/);
        const id = readdirSync(join(dir, 'main', 'backup'))[0]!;
        assert.equal((await readRecord(new PosixStorage(dir), 'main', id))?.state, 'failed');
        if (how === 'lost') assert.ok(readdirSync(join(dir, 'main', 'backup', id)).includes('bundle'), 'what it stored is kept');
        else {
          // Known not complete, on a full repository: what it stored goes, so that archiving can go on.
          assert.deepEqual(readdirSync(join(dir, 'main', 'backup', id)), ['backup.json']);
          assert.match(warnings.join('\n'), /the repository is full/);
        }
      }
    }
  });
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`under the backup lock a "running" record of another host is a dead run: what it stored is removed (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `deadrun${version}` });
    const env = clusterEnv(src);
    const dir = src.tempDir('repo');
    assert.equal((await runPgpitr(['stanza-create', '--repo', dir, '--stanza', 'main'], env)).code, 0);
    const storage = new PosixStorage(dir);
    const stanza = await readStanza(repositoryOn(storage, dir), 'main');
    const id = '20261201-000000F';
    await writeRecord(storage, {
      format: 'pgpitr-backup', format_version: 1, id, type: 'full', state: 'running', stanza: 'main', label: '', system_identifier: stanza.system_identifier,
      pg_version_num: version * 10000, timeline: null, start_lsn: null, stop_lsn: null, start_wal: null, stop_wal: null,
      start_time: '2026-12-01T00:00:00.000Z', stop_time: null, stop_next_xid: null, backup_from: 'primary', wal: 'included', compression: 'zstd', size: null, stored_size: null,
      file_count: null, databases: [], annotations: {}, pinned: false, process: { host: 'another-host', pid: 4242, start_ticks: null, boot_id: null }, error: null,
    });
    await storage.write(`main/backup/${id}/data/base/1/1234`, Buffer.alloc(100_000, 7));
    // Its process cannot be looked at from here, and no backup lock names it: info says interrupted, not running.
    const info = await runPgpitr(['info', '--repo', dir, '--stanza', 'main', '--output', 'json'], env);
    assert.equal(info.code, 0, info.stderr);
    assert.equal((JSON.parse(info.stdout) as { stanzas: { backups: { id: string; state: string }[] }[] }).stanzas[0]!.backups.find((b) => b.id === id)?.state, 'interrupted', info.stdout);
    // Run against another cluster by mistake: refused before anything an earlier run left is removed (--resume may still take it over).
    const other = await TestCluster.create({ version, name: `deadrunother${version}`, fresh: true }); // a system of its own
    const wrong = await runPgpitr(['backup', '--repo', dir, '--stanza', 'main', '--wal', 'included', '--start-fast'], clusterEnv(other));
    assert.equal(wrong.code, 5, wrong.stderr);
    assert.match(wrong.stderr, new RegExp(`the server is database system \\d+, the stanza is for system ${stanza.system_identifier}: stanza "main" cannot hold its backups`));
    assert.deepEqual(readdirSync(join(dir, 'main', 'backup', id)).sort(), ['backup.json', 'data']);
    const r = await runPgpitr(['backup', '--repo', dir, '--stanza', 'main', '--wal', 'included', '--start-fast', '-v'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`removed what interrupted backup ${id} had stored`));
    assert.deepEqual(readdirSync(join(dir, 'main', 'backup', id)), ['backup.json']);

    // A server whose WAL cannot reach the archive (archive_mode off, no WAL receiver): refused before anything is copied.
    const before = readdirSync(join(dir, 'main', 'backup')).sort();
    const unarchived = await runPgpitr(['backup', '--repo', dir, '--stanza', 'main', '--start-fast'], env);
    assert.equal(unarchived.code, 7, unarchived.stderr);
    assert.match(unarchived.stderr, /the server does not archive its WAL \(archive_mode is off, and no WAL receiver streams from it nor has a slot there\)/);
    assert.deepEqual(readdirSync(join(dir, 'main', 'backup')).sort(), before);
    // A backup that fails after its manifests were written (its WAL archived elsewhere, never into the stanza) keeps none of them.
    await src.sql("alter system set archive_mode = 'on'");
    await src.sql("alter system set archive_command = '/bin/true'");
    await src.stop('fast');
    await src.start();
    const late = await runPgpitr(['backup', '--repo', dir, '--stanza', 'main', '--start-fast', '--archive-timeout', '2'], env);
    assert.equal(late.code, 7, late.stderr);
    assert.match(late.stderr, /is not in the archive/);
    const failed = readdirSync(join(dir, 'main', 'backup')).sort().at(-1)!;
    assert.deepEqual(readdirSync(join(dir, 'main', 'backup', failed)), ['backup.json']);

    // A role kept out of a database (no CONNECT) backs up all the same; that database's size is not known.
    await src.sql('create database secret');
    await src.sql('revoke connect on database secret from public; create role backupper login replication');
    const asRole = await runPgpitr(['backup', '--repo', dir, '--stanza', 'main', '--wal', 'included', '--start-fast'], { ...env, PGUSER: 'backupper' });
    assert.equal(asRole.code, 0, asRole.stderr);
    const newest = readdirSync(join(dir, 'main', 'backup')).sort().at(-1)!;
    const sizes = (await readRecord(storage, 'main', newest))!.databases;
    assert.equal(sizes.find((d) => d.name === 'secret')?.size, null);
    assert.ok((sizes.find((d) => d.name === 'postgres')?.size ?? 0) > 0);

    // A backup dated after this host's clock (taken while a clock ran ahead): said, and backups go on.
    const ahead = '20991231-000000F';
    await writeRecord(storage, { ...(await readRecord(storage, 'main', newest))!, id: ahead, state: 'complete', start_time: '2099-12-31T00:00:00.000Z', stop_time: '2099-12-31T00:01:00.000Z' });
    const skewed = await runPgpitr(['backup', '--repo', dir, '--stanza', 'main', '--wal', 'included', '--start-fast'], env);
    assert.equal(skewed.code, 0, skewed.stderr);
    assert.match(skewed.stderr, new RegExp(`backup ${ahead} is dated 2099-12-31T00:01:00.000Z, later than this host's clock .*retention does not count it`));
  });
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`a repository that fills up during a backup: what the backup stored is removed even when its failed record cannot be written (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `full${version}` });
    await src.sql('create table t as select g, repeat(md5(g::text), 20) as pad from generate_series(1, 20000) g');
    const env = clusterEnv(src);
    const dir = src.tempDir('repo');
    assert.equal((await runPgpitr(['stanza-create', '--repo', dir, '--stanza', 'main'], env)).code, 0);
    const storage = new PosixStorage(dir);
    const write = storage.write.bind(storage);
    let stored = 0;
    storage.write = async (path: string, source: Parameters<Storage['write']>[1], opts?: WriteOptions) => {
      const object = /\/(data|bundle)\//.test(path);
      const failedRecord = path.endsWith('/backup.json') && Buffer.isBuffer(source) && source.includes('"state": "failed"');
      if ((object && ++stored > 5) || failedRecord) throw Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' });
      return write(path, source, opts);
    };
    const { run, warnings } = await backupHere(storage, dir, env);
    await assert.rejects(run(), /ENOSPC|no space left/);
    assert.match(warnings.join('\n'), /the repository is full; what it had stored is removed/);
    const id = readdirSync(join(dir, 'main', 'backup'))[0]!;
    assert.deepEqual(readdirSync(join(dir, 'main', 'backup', id)), ['backup.json']);
    assert.equal((await readRecord(new PosixStorage(dir), 'main', id))?.state, 'running', 'the record could not say failed: it reads as interrupted');
  });
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`a repository on a file system that fills up (tmpfs, --wal=included): the backup fails cleanly with exit 5, its files removed, never a crash (PostgreSQL ${version})`, async (t) => {
    let fs: string | null = null;
    // Unmounted before the cluster's directories go.
    t.after(async () => {
      if (fs !== null) spawnSync('umount', ['-l', fs]);
      await destroyAll();
    });
    const src = await TestCluster.create({ version, name: `fullfs${version}` });
    const at = src.tempDir('fs');
    // A real ENOSPC in the middle of a stored file: a mount of its own (root only; skipped elsewhere).
    if (process.getuid?.() !== 0 || spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', at]).status !== 0) return t.skip('cannot mount a tmpfs here');
    fs = at;
    await src.sql('create table t as select g, repeat(md5(g::text), 20) as pad from generate_series(1, 40000) g');
    const env = clusterEnv(src);
    const dir = join(at, 'repo');
    assert.equal((await runPgpitr(['stanza-create', '--repo', dir, '--stanza', 'main'], env)).code, 0);
    writeFileSync(join(at, 'filler'), Buffer.alloc(21 * 1024 * 1024));
    // Uncompressed, the disk fills inside a large file's stream: the error reported, and kept in the
    // record, is the write's (ENOSPC, naming the file), not the echo of its stream being cut
    // ("The operation was aborted", exit 1; "the consumer of the chunks stopped" with -j).
    for (const args of [['--wal=included'], ['--wal=included'], ['--compress-type', 'none', '--wal=included'], ['--compress-type', 'none', '-j', '2', '--wal=included']]) {
      const r = await runPgpitr(['backup', '--repo', dir, '--stanza', 'main', '--start-fast', ...args], env);
      assert.equal(r.code, 5, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /a bug|Unhandled/);
      assert.match(r.stderr, /the repository is full; what it had stored is removed/);
      assert.match(r.stderr, /error: could not write ".*": ENOSPC: no space left on device/, args.join(' '));
    }
    for (const id of readdirSync(join(dir, 'main', 'backup'))) assert.deepEqual(readdirSync(join(dir, 'main', 'backup', id)), ['backup.json']);
  });
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`the backup's side connection, idle while the files are copied, dropped: the backup completes, with the server's stop time and transaction horizon asked on a new one (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `side${version}` });
    await src.sql('create table t as select g from generate_series(1, 10000) g');
    const env = clusterEnv(src);
    const dir = src.tempDir('repo');
    assert.equal((await runPgpitr(['stanza-create', '--repo', dir, '--stanza', 'main'], env)).code, 0);
    const storage = new PosixStorage(dir);
    const write = storage.write.bind(storage);
    let dropped: Promise<unknown> | null = null;
    storage.write = async (path: string, source: Parameters<Storage['write']>[1], opts?: WriteOptions) => {
      // While the first file is stored: as a firewall dropping an idle connection would.
      if (/\/(data|bundle)\//.test(path)) dropped ??= src.sql(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgpitr backup' and backend_type = 'client backend'`);
      return write(path, source, opts);
    };
    const { run, warnings } = await backupHere(storage, dir, env);
    const before = (await src.sql<{ x: string }>('select pg_snapshot_xmax(pg_current_snapshot())::text x'))[0]!.x;
    const record = await run();
    assert.ok(dropped, 'no file was stored');
    assert.deepEqual(await dropped, [{ pg_terminate_backend: true }]);
    assert.equal(record.state, 'complete', warnings.join('\n'));
    assert.deepEqual(warnings, []);
    assert.ok(record.server_stop_time && Date.parse(record.server_stop_time) >= Date.parse(record.start_time), JSON.stringify(record));
    assert.ok(record.stop_next_xid !== null && BigInt(record.stop_next_xid) >= BigInt(before), JSON.stringify(record));
    assert.ok(record.page_images !== undefined, 'what WAL replay needs of the databases is recorded');
  });
}
