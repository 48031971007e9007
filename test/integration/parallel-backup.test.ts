// Parallel backup (-j N, direct read method) on every supported version: with a
// pgbench load running during the backup, -j 1, 2 and 4 give plain backups that
// pg_verifybackup accepts (our manifest check for 17+), that start, and whose
// pgbench tables hold the balance invariant (every committed transaction
// whole or absent). A user tablespace relocated with -T is part of it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData, runPgbenchInit, tableChecksums } from '../harness/data.js';
import { compatVersionsFromEnv, versionsFromEnv } from '../harness/pg-versions.js';
import { extractTarBackup } from '../helpers/tar-extract.js';
import { runCommand } from '../harness/run.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered } from '../helpers/pitr.js';
import { runPgpitr, clusterEnv, verifyPlainBackup, readState, chownTree, CLI } from '../helpers/pgpitr.js';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { pgbenchBalanced, startPgbenchLoad } from '../helpers/pgbench-load.js';

/** Every file under dir with its size, sorted. */
function listTree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((n) => `${n} ${statSync(join(dir, n)).size}`).sort();
}

for (const version of compatVersionsFromEnv()) {
  test(`parallel backup -j 1, 2, 4 under pgbench load: verified, starts, balanced (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `par${version}` });
    const tsDir = src.tempDir('ts1');
    await createSampleData(src, { rows: 5000, tablespaceDir: tsDir });
    await runPgbenchInit(src, 2);
    const env = clusterEnv(src);
    // A load for the whole test: every backup is taken while it writes.
    const load = startPgbenchLoad(src);
    await load.running();
    try {
      // Each -j on PGPITR_TEST_VERSIONS; -j 2 alone on the other versions, whose differences
      // (backup start/stop, file access) do not depend on the number of workers.
      for (const jobs of versionsFromEnv().includes(version) ? [1, 2, 4] : [2]) {
        const target = join(src.tempDir('backups'), `j${jobs}`);
        const newTs = join(src.tempDir('relocated'), `ts-j${jobs}`);
        // -j 1 with -X fetch: the WAL is streamed all the same (no BASE_BACKUP to carry it); the copy must start.
        const wal = jobs === 1 ? '-Xfetch' : '-Xstream';
        const r = await runPgpitr(['basebackup', '-D', target, '-Fp', wal, '-c', 'fast', '-j', String(jobs), '-T', `${tsDir}=${newTs}`, '-v'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`reading files with ${jobs} worker`));
        assert.equal(readState(target).status, 'complete');
        await verifyPlainBackup(target, version);
        const oid = (await src.sql<{ oid: string }>("select oid::text from pg_tablespace where spcname = 'ts1'"))[0]!.oid;
        assert.equal(readlinkSync(join(target, 'pg_tblspc', oid)), newTs);
        // No backup left running on the server, no slot left.
        const slots = await src.sql<{ n: string }>('select count(*)::text n from pg_replication_slots');
        assert.equal(slots[0]!.n, '0');

        chownTree(newTs);
        const restored = await TestCluster.startExisting(target, version, { name: `par${version}j${jobs}` });
        await pgbenchBalanced(restored);
        const sums = await tableChecksums(restored);
        assert.ok(Object.keys(sums).length > 0);
        await restored.destroy();
      }
      assert.ok(load.transactions() > 0, 'the pgbench load ran no transaction');
    } finally {
      load.stop();
    }
  });
}

for (const version of versionsFromEnv()) {
  // Uncompressed tar files are written by the readers themselves (BackupSink.directTar), each member
  // where its reader reserved it; compressed ones come through the main thread, in buffers the
  // readers lend (lent-buffers.ts), by either read method: all three, on the newest version. With a
  // SHA-256 manifest, files over 8 MiB are read whole, not in ranges: jobs of very unequal length
  // share the readers while each member waits for the one before it (read-pool.ts hands them out in order).
  const newest = version === Math.max(...versionsFromEnv());
  for (const [compress, method, checksums] of newest ? [['client-lz4', 'auto'], ['none', 'auto'], ['client-lz4', 'sql'], ['client-lz4', 'auto', 'SHA256']] : [['client-lz4', 'auto']])
  test(`parallel backup -j 2 in tar format, ${compress}, read method ${method}${checksums ? `, ${checksums} manifest` : ''}, under load: verified, starts, balanced (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `part${version}` });
    const tsDir = src.tempDir('ts1');
    await createSampleData(src, { rows: 5000, tablespaceDir: tsDir });
    await runPgbenchInit(src, 2);
    const load = startPgbenchLoad(src);
    await load.running();
    let r;
    const out = join(src.tempDir('tarout'), 'b');
    try {
      r = await runPgpitr(['basebackup', '-D', out, '-Ft', '-Xstream', '-c', 'fast', '-Z', compress!, '-j', '2', '--read-method', method!, ...(checksums ? ['--manifest-checksums', checksums] : [])], clusterEnv(src));
    } finally {
      load.stop();
    }
    assert.equal(r.code, 0, r.stderr);
    // As the server with tablespace_map: no pg_tblspc links in base.tar (extracted on the database host they lead into the live tablespaces).
    const baseTar = readdirSync(out).find((f) => f.startsWith('base.tar'))!;
    const via = baseTar.endsWith('.lz4') ? ['-I', 'lz4'] : baseTar.endsWith('.zst') ? ['-I', 'zstd'] : baseTar.endsWith('.gz') ? ['-z'] : [];
    const members = await runCommand('tar', [...via, '-tvf', join(out, baseTar)]);
    assert.equal(members.code, 0, members.stderr);
    assert.deepEqual(members.stdout.split('\n').filter((l) => l.includes('pg_tblspc/') && l.startsWith('l')), []);
    const data = src.tempDir('tar-restored');
    const tsRoot = src.tempDir('tar-ts');
    const { relocateTablespaces } = await extractTarBackup(out, data, tsRoot);
    writeFileSync(join(data, 'pgpitr_backup.state'), readFileSync(join(out, 'pgpitr_backup.state')));
    await verifyPlainBackup(data, version);
    relocateTablespaces();
    chownTree(tsRoot);
    const restored = await TestCluster.startExisting(data, version, { name: `partr${version}` });
    await pgbenchBalanced(restored);
  });

  // By the direct read method, compressed; on the newest version also through SQL, uncompressed
  // (the stored chunks are then the very buffers the readers lend).
  for (const [method, compress] of newest ? [['auto', 'zstd'], ['sql', 'none']] : [['auto', 'zstd']])
  test(`repository backup -j 2, read method ${method}, ${compress}, under load restores to a balanced copy (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const a = await archivingCluster(version, `parr${version}`);
    // Scale 6: pgbench_accounts (~80 MB) is over 64 MiB, so restore cuts it across its copiers (file-pieces.ts).
    await runPgbenchInit(a.c, 6);
    const load = startPgbenchLoad(a.c);
    await load.running();
    let r;
    try {
      r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '-j', '2', '--read-method', method!, '--compress-type', compress!, '--output', 'json'], a.c.connectionEnv());
    } finally {
      load.stop();
    }
    assert.equal(r.code, 0, r.stderr);
    const record = JSON.parse(r.stdout) as { id: string; state: string };
    assert.equal(record.state, 'complete');
    const manifestPath = join(a.repo, 'main', 'backup', record.id, 'manifest.json');
    if (existsSync(manifestPath)) {
      // Compressed by the readers 1 MiB at a time: the large file's frames are indexed, for restore to cut it there.
      const files = (JSON.parse(readFileSync(manifestPath, 'utf8')) as { files: { size: number; index?: unknown }[] }).files;
      const large = files.filter((f) => f.size > 64 * 1024 * 1024);
      assert.ok(large.length > 0, 'no file over 64 MiB to cut');
      if (compress !== 'none') assert.ok(large.every((f) => f.index !== undefined), 'a large compressed file has no frame index');
    }
    const v = await runPgpitr(['verify', ...a.repoArgs]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const dir = restoreDir(a.c, 'restored');
    const rr = await restoreWith(a, dir, ['--set', record.id, '--target-immediate', '--target-action', 'promote']);
    assert.equal(rr.code, 0, rr.stderr);
    const restored = await startRecovered(dir, version, `parrr${version}`);
    await pgbenchBalanced(restored);
  });
}

// One version, the newest: resuming is pgpitr's own (repo-backup-resume.test.ts resumes under load too).
for (const version of versionsFromEnv().slice(-1)) {
  test(`--resume after a SIGKILL half way keeps what was copied and gives a backup that verifies and starts (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `parres${version}` });
    await runPgbenchInit(src, 10);
    // A tablespace, mapped elsewhere (-T): a rerun must write there too, and never into the live one.
    const tsDir = src.tempDir('ts1');
    await src.sql(`create tablespace ts1 location '${tsDir}'`);
    await src.sql('create table in_ts tablespace ts1 as select g, md5(g::text) v from generate_series(1, 100000) g');
    await src.sql('CHECKPOINT');
    // Data files must be older than a second when copied to be kept (copy-journal.ts reusable()).
    await new Promise((r) => setTimeout(r, 1500));
    const target = join(src.tempDir('resume'), 'b');
    const mapped = join(src.tempDir('resume-ts'), 'ts');
    // WAL in a directory of its own (--waldir): the rerun makes pg_wal its link again.
    const walDir = join(src.tempDir('resume-wal'), 'wal');
    const unmappedArgs = ['basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-j', '2', '--waldir', walDir];
    const args = [...unmappedArgs, '-T', `${tsDir}=${mapped}`];
    const env = { ...process.env, ...clusterEnv(src) };

    // First run, slowed down, killed once it has copied about half.
    const child = spawn(process.execPath, [CLI, ...args, '-r', '24M', '--progress-format=json'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let half = false;
    const lines = createInterface({ input: child.stderr });
    lines.on('line', (l) => {
      if (!l.startsWith('{') || half) return;
      const p = JSON.parse(l) as { type: string; bytes_done?: number; bytes_total?: number | null; phase?: string };
      if (p.type === 'progress' && p.phase === 'streaming database files' && p.bytes_total && (p.bytes_done ?? 0) >= p.bytes_total / 2) {
        half = true;
        child.kill('SIGKILL');
      }
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.ok(half, `the first run ended (code ${code}) before it was killed half way`);
    const st = await runPgpitr(['status', target, '--output', 'json']);
    assert.equal(JSON.parse(st.stdout).assessed_status, 'interrupted');

    // Rerun without -T: the tablespace's path is then the live one, not empty, and is refused
    // (before, the resume took it as its own and removed files of the running cluster).
    const live = () => listTree(tsDir);
    const liveBefore = live();
    const unmapped = await runPgpitr([...unmappedArgs, '--resume'], clusterEnv(src));
    assert.equal(unmapped.code, 5, unmapped.stderr);
    assert.match(unmapped.stderr, /tablespace directory \(oid \d+\) ".*ts1" exists but is not empty/);
    assert.match(unmapped.stderr, /same -T mappings/);
    assert.deepEqual(live(), liveBefore);
    // Against another database system (-h at the wrong cluster): refused on connecting, every file of
    // the target kept (the state file says failed, and still names the system it was taken from).
    const other = await TestCluster.create({ version, name: `parres${version}o`, fresh: true });
    const targetBefore = listTree(target);
    const systemBefore = readState(target).system_identifier;
    const foreign = await runPgpitr([...args, '--resume'], clusterEnv(other));
    await other.destroy();
    assert.equal(foreign.code, 5, foreign.stderr);
    assert.match(foreign.stderr, /is of database system \d+, the server is system \d+/);
    assert.deepEqual(listTree(target), targetBefore);
    assert.equal(readState(target).system_identifier, systemBefore);

    // The rerun keeps more than 40% (copies less than 60%) and ends with a backup like any other.
    const r = await runPgpitr([...args, '--resume', '-v'], clusterEnv(src));
    assert.equal(r.code, 0, r.stderr);
    const m = /resumed: kept (\d+) files \((\d+) of (\d+) bytes\)/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.ok(Number(m[2]) > 0.4 * Number(m[3]), `kept only ${m[2]} of ${m[3]} bytes`);
    assert.equal(readState(target).status, 'complete');
    assert.doesNotMatch(r.stderr, /is not this backup's/, 'the same -T and --waldir: no directory of the first run left behind');
    await verifyPlainBackup(target, version);
    const slots = await src.sql<{ n: string }>('select count(*)::text n from pg_replication_slots');
    assert.equal(slots[0]!.n, '0');
    assert.equal(realpathSync(join(target, 'pg_wal')), realpathSync(walDir));
    chownTree(mapped);
    chownTree(walDir);
    const restored = await TestCluster.startExisting(target, version, { name: `parres${version}r` });
    await pgbenchBalanced(restored);
    assert.equal((await restored.sql<{ n: string }>('select count(*)::text n from in_ts'))[0]!.n, '100000');

    // A complete backup is not resumed.
    const again = await runPgpitr([...args, '--resume'], clusterEnv(src));
    assert.equal(again.code, 5, again.stderr);
    assert.match(again.stderr, /complete: there is nothing to resume/);
    assert.doesNotMatch(again.stderr, /keeping|NOT usable/, 'a refused --resume wrote nothing and keeps nothing');
  });
}
