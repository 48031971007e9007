// basebackup -j reads the data directory directly only when it is the running server's. A copy
// of the cluster at the server's path on this host (a replica's data directory, a stopped copy
// restored from it: same system identifier) would give a backup that passes every check and
// restores wrong. Here the copy is put at the server's path in a mount namespace of pgpitr's own:
// with the server's postmaster.pid copied too, the forced direct method is refused once the
// backup has started (its pg_control holds an older checkpoint); without it, the automatic
// choice reads through SQL and the backup verifies.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { runPgbenchInit } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { chownTree, clusterEnv, runPgpitr, verifyPlainBackup, CLI } from '../helpers/pgpitr.js';

/** pgpitr with `copy` mounted over `dataDir`, seen by it alone. */
function pgpitrOverCopy(copy: string, dataDir: string, args: string[], env: NodeJS.ProcessEnv) {
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return runCommand('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', copy, dataDir, process.execPath, CLI, ...args], { env: { ...process.env, ...env } });
}

const unshareWorks = (await runCommand('unshare', ['--mount', 'true']).catch(() => ({ code: 1 }))).code === 0;

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`-j reads directly only the running server's data directory, not a copy at its path (PostgreSQL ${version})`, { skip: !unshareWorks && 'unshare --mount is not permitted here' }, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `parcopy${version}` });
    await runPgbenchInit(src, 2);
    await src.sql('CHECKPOINT');
    const copy = join(src.tempDir('copy'), 'data');
    const cp = await runCommand('cp', ['-a', src.dataDir, copy]);
    assert.equal(cp.code, 0, cp.stderr);
    await src.sql('update pgbench_accounts set abalance = abalance + 1 where aid < 1000');
    const env = clusterEnv(src);

    // The copy holds the server's own postmaster.pid: only its checkpoint, older than the backup's start, gives it away.
    const forced = join(src.tempDir('forced'), 'b');
    const r1 = await pgpitrOverCopy(copy, src.dataDir, ['basebackup', '-D', forced, '-Fp', '-c', 'fast', '-j', '2', '--read-method=direct'], env);
    assert.equal(r1.code, 5, r1.stderr);
    assert.match(r1.stderr, /the data directory ".*" on this host is not the server's: its last checkpoint starts at [0-9A-F]+\/[0-9A-F]+, the backup at/);
    assert.equal(existsSync(forced), false, 'the target is removed');
    const slots = await src.sql<{ n: string }>('select count(*)::text n from pg_replication_slots');
    assert.equal(slots[0]!.n, '0');

    // Without a postmaster.pid it is not taken for the server's: the automatic choice reads through SQL.
    rmSync(join(copy, 'postmaster.pid'));
    const auto = join(src.tempDir('auto'), 'b');
    const r2 = await pgpitrOverCopy(copy, src.dataDir, ['basebackup', '-D', auto, '-Fp', '-c', 'fast', '-j', '2', '-v'], env);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /through SQL/);
    await verifyPlainBackup(auto, version);
  });
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`-j: a file rewritten after the listing (ALTER SYSTEM) is copied whole, not cut to its listed size (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `parconf${version}` });
    await runPgbenchInit(src, 2);
    const env = clusterEnv(src);
    // Plain (each file started by a lane when a reader is free) and compressed tar (every file started at once: the data directory's own files start last);
    // through SQL, where the sizes of the data directory's own files are asked again before they are copied last.
    const cases = [['-Fp'], ['-Ft', '-Z', 'client-zstd'], ['-Fp', '--read-method', 'sql'], ['-Ft', '--read-method', 'sql']];
    // Also a file below the data directory's top that WAL does not rebuild: pg_logical/replorigin_checkpoint, rewritten
    // (another size) by every checkpoint while replication origins come and go (a logical subscriber's table syncs).
    const origins = async (tag: string, count: number) => {
      for (let i = 0; i < count; i++) await src.sql(`select pg_replication_origin_create('o_${tag}_${i}'); select pg_replication_origin_advance('o_${tag}_${i}', '0/100')`);
      await src.sql('checkpoint');
    };
    const ORIGINS = join(src.dataDir, 'pg_logical', 'replorigin_checkpoint');
    for (const [n, format] of cases.entries()) {
      await src.sql(`alter system set application_name = 'short'`);
      await src.sql('select pg_replication_origin_drop(roname) from pg_replication_origin'); // max_replication_slots bounds them
      await origins(`b${n}`, 1);
      const before = readFileSync(join(src.dataDir, 'postgresql.auto.conf'), 'utf8');
      const originsBefore = readFileSync(ORIGINS);
      const target = join(src.tempDir(`b${n}`), 'b');
      // Slowed down: the data directory's own files (postgresql.auto.conf among them) are copied last.
      const child = spawn(process.execPath, [CLI, 'basebackup', '-D', target, ...format, '-c', 'fast', '-j', '2', '-r', '12M', '--progress-format=json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let altered: Promise<unknown> | null = null;
      let rewritten: Promise<unknown> | null = null;
      createInterface({ input: child.stderr }).on('line', (l) => {
        if (!l.startsWith('{')) return;
        const p = JSON.parse(l) as { type: string; phase?: string; bytes_done?: number };
        if (p.type !== 'progress' || p.phase !== 'streaming database files') return;
        // Listed by now, no file read yet: the origins' file gets another size before it is read.
        rewritten ??= origins(`d${n}`, 3);
        if (!altered && (p.bytes_done ?? 0) > 1_000_000) altered = src.sql(`alter system set application_name = '${'x'.repeat(200)}'`);
      });
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      assert.equal(code, 0, format.join(' '));
      assert.ok(altered && rewritten, 'the backup ended before the files could be rewritten');
      await altered;
      await rewritten;
      const after = readFileSync(join(src.dataDir, 'postgresql.auto.conf'), 'utf8');
      const originsAfter = readFileSync(ORIGINS);
      assert.notEqual(after, before);
      assert.notEqual(originsAfter.length, originsBefore.length);
      let copied: string;
      let copiedOrigins: Buffer;
      if (format[0] === '-Fp') {
        copied = readFileSync(join(target, 'postgresql.auto.conf'), 'utf8');
        copiedOrigins = readFileSync(join(target, 'pg_logical', 'replorigin_checkpoint'));
        await verifyPlainBackup(target, version);
      } else {
        const zstd = format.includes('client-zstd');
        const member = async (name: string) => {
          const x = spawnSync('tar', [...(zstd ? ['-I', 'zstd'] : []), '-xOf', join(target, zstd ? 'base.tar.zst' : 'base.tar'), name]);
          assert.equal(x.status, 0, x.stderr.toString());
          return x.stdout;
        };
        copied = (await member('postgresql.auto.conf')).toString('utf8');
        copiedOrigins = await member('pg_logical/replorigin_checkpoint');
      }
      assert.ok(copied === after || copied === before, `${format.join(' ')}: copied postgresql.auto.conf is neither version: ${JSON.stringify(copied)}`);
      assert.ok(copiedOrigins.equals(originsAfter) || copiedOrigins.equals(originsBefore), `${format.join(' ')}: copied replorigin_checkpoint (${copiedOrigins.length} bytes) is neither version (${originsBefore.length}, ${originsAfter.length} bytes)`);
    }
  });
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`-j: a tablespace located inside the data directory is copied once, with the tablespace, as BASE_BACKUP sends it (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `parints${version}` });
    const env = clusterEnv(src);
    // PostgreSQL only warns ("tablespace location should not be inside the data directory").
    const location = join(src.dataDir, 'inside_ts');
    mkdirSync(location);
    chownTree(location);
    await src.sql(`create tablespace inside location '${location}'`);
    await src.sql('create table t_in tablespace inside as select g from generate_series(1, 10000) g');
    for (const method of ['direct', 'sql']) {
      const target = join(src.tempDir(`in-${method}`), 'b');
      const mapped = join(src.tempDir(`in-${method}-ts`), 'ts');
      const r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-c', 'fast', '-j', '2', '--read-method', method, '-T', `${location}=${mapped}`], env);
      assert.equal(r.code, 0, `${method}: ${r.stderr}`);
      // The location's directory is in the base, empty; its files are the tablespace's, where -T put them.
      assert.deepEqual(readdirSync(join(target, 'inside_ts')), [], method);
      assert.ok(readdirSync(mapped).some((n) => n.startsWith('PG_')), method);
      const manifest = JSON.parse(readFileSync(join(target, 'backup_manifest'), 'utf8')) as { Files: { Path: string }[] };
      assert.deepEqual(manifest.Files.filter((f) => f.Path.startsWith('inside_ts/')), [], method);
      await verifyPlainBackup(target, version);
    }
  });
}
