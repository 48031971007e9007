// Parallel backup (-j N, direct read method) when things go wrong (issue 10,
// items 2 and 4). Each failure must give a clear error and a documented non-zero
// exit code, remove the target and the tablespace directories it created (unless
// -n), and leave nothing on the server: no slot, no session of ours (the SQL
// session holding a non-exclusive backup ends it when it goes), no backup in
// progress. A corrupted page fails the backup naming file and block as the
// server words it, and keeps the target marked failed; --no-verify-checksums
// copies it; pages written during the backup are never reported.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { damageBlockOne } from '../helpers/damaged-page.js';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData, runPgbenchInit } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, readState, verifyPlainBackup, CLI } from '../helpers/pgpitr.js';
import { startPgbenchLoad } from '../helpers/pgbench-load.js';

const APP = 'pgpitr parallel backup';

async function eventually(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`${what} (after ${ms} ms)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Nothing of ours left on the server, and it still takes a backup. */
async function nothingLeft(c: TestCluster, version: number): Promise<void> {
  const count = async (q: string) => Number((await c.sql<{ n: string }>(`select count(*)::text n from (${q}) q`))[0]!.n);
  await eventually('a replication slot is left', async () => (await count('select 1 from pg_replication_slots')) === 0);
  await eventually('a pgpitr session is left', async () => (await count(`select 1 from pg_stat_activity where application_name like 'pgpitr%' or backend_type = 'walsender'`)) === 0);
  assert.equal(await count('select 1 from pg_stat_progress_basebackup'), 0, 'a base backup is still running on the server');
  // A non-exclusive backup lives in its session (gone, above); 13 and 14 also have the exclusive one.
  if (version < 15) assert.deepEqual(await c.sql('select pg_is_in_backup() as b'), [{ b: false }]);
  const client = await c.connect();
  try {
    if (version >= 15) {
      await client.query("select pg_backup_start('x', true)");
      await client.query('select pg_backup_stop(false)');
    } else {
      await client.query("select pg_start_backup('x', true, false)");
      await client.query('select pg_stop_backup(false, false)');
    }
  } finally {
    await client.end();
  }
}

/** A pgpitr basebackup run in the background; `copying` resolves once the workers have copied bytes. */
function startBackup(env: NodeJS.ProcessEnv, args: string[]) {
  const child = spawn(process.execPath, [CLI, 'basebackup', ...args, '--progress-format=json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code, sig) => res(code ?? (sig ? -1 : null))));
  const copying = new Promise<void>((res, rej) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/"bytes_done":[1-9]/.test(stderr)) res();
    });
    void exited.then(() => rej(new Error(`the backup ended before copying: ${stderr}`)));
  });
  copying.catch(() => {});
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  void exited.then(() => clearTimeout(timer));
  return { child, exited, copying, stderr: () => stderr, stdout: () => stdout };
}

// One version: the faults are pgpitr's own; the compatibility matrix runs -j on 13-18.
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`parallel backup failures leave nothing behind; a corrupted page fails naming file and block (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `pfault${version}` });
    const tsDir = src.tempDir('ts1');
    await createSampleData(src, { rows: 5000, tablespaceDir: tsDir });
    const env = clusterEnv(src);
    let n = 0;
    /** A target and a relocated tablespace directory, neither existing yet. */
    const paths = () => {
      const dir = src.tempDir(`run${++n}`);
      return { target: join(dir, 'b'), ts: join(dir, 'ts'), map: ['-T', `${tsDir}=${join(dir, 'ts')}`] };
    };
    const gone = (p: { target: string; ts: string }, why: string) => {
      assert.ok(!existsSync(p.target), `${why}: the target was left behind`);
      assert.ok(!existsSync(p.ts), `${why}: the relocated tablespace directory was left behind`);
    };
    const slow = (p: ReturnType<typeof paths>, extra: string[] = []) => ['-D', p.target, '-Fp', '-j', '2', '-r', '256k', '-c', 'fast', ...p.map, ...extra];

    await t.test('an absurd -j is refused before anything is written', async () => {
      for (const j of ['0', '100000']) {
        const p = paths();
        const r = await runPgpitr(['basebackup', '-D', p.target, `--jobs=${j}`, ...p.map], env);
        assert.equal(r.code, 2, `-j ${j}: ${r.stderr}`);
        assert.match(r.stderr, /invalid number of parallel jobs/);
        gone(p, `-j ${j}`);
      }
    });

    await t.test('-j above the open-file limit is refused before copying', async () => {
      const p = paths();
      const r = await new Promise<{ code: number | null; stderr: string }>((res) => {
        const child = spawn('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${CLI}" basebackup -D "${p.target}" -Fp -j 64 -c fast ${p.map.map((a) => `"${a}"`).join(' ')}`], { env: { ...process.env, ...env } });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (code) => res({ code, stderr }));
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /open files|open-file limit/);
      assert.match(r.stderr, /ulimit -n/);
      gone(p, '-j 64 with ulimit -n 64');
      await nothingLeft(src, version);
    });

    await t.test('two parallel backups at once both succeed', async () => {
      const a = paths();
      const b = paths();
      const [ra, rb] = await Promise.all([
        runPgpitr(['basebackup', '-D', a.target, '-Fp', '-j', '2', '-c', 'fast', ...a.map], env),
        runPgpitr(['basebackup', '-D', b.target, '-Fp', '-j', '3', '-c', 'fast', ...b.map], env),
      ]);
      assert.equal(ra.code, 0, ra.stderr);
      assert.equal(rb.code, 0, rb.stderr);
      for (const p of [a, b]) {
        assert.equal(readState(p.target).status, 'complete');
        await verifyPlainBackup(p.target, version);
      }
      await nothingLeft(src, version);
    });

    await t.test('-S naming a slot that does not exist, with a tablespace', async () => {
      const p = paths();
      const r = await runPgpitr(['basebackup', '-D', p.target, '-Fp', '-j', '2', '-S', 'no_such_slot', '-c', 'fast', ...p.map], env);
      assert.notEqual(r.code, 0);
      if (version >= 15) assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /replication slot "no_such_slot" does not exist/);
      gone(p, '-S no_such_slot');
      await nothingLeft(src, version);
    });

    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      await t.test(`${sig} mid-backup: clean-up and exit 130`, async () => {
        const p = paths();
        const b = startBackup(env, slow(p));
        await b.copying;
        if (sig === 'SIGINT') {
          // -r is the rate of all workers together: a worker may run one chunk (1 MiB) ahead, no more.
          await new Promise((r) => setTimeout(r, 2000));
          const last = b.stderr().trim().split('\n').filter((l) => l.startsWith('{')).pop()!;
          const { bytes_done, elapsed_seconds } = JSON.parse(last) as { bytes_done: number; elapsed_seconds: number };
          assert.ok(bytes_done <= 256 * 1024 * elapsed_seconds + 2 * 1024 * 1024, `-r 256k: ${bytes_done} bytes copied in ${elapsed_seconds} s`);
        }
        const t0 = Date.now();
        b.child.kill(sig);
        assert.equal(await b.exited, 130, b.stderr());
        assert.ok(Date.now() - t0 < 10_000, `${sig} took ${Date.now() - t0} ms to stop the backup`);
        assert.match(b.stderr(), /interrupted/);
        gone(p, sig);
        await nothingLeft(src, version);
      });
    }

    await t.test('SIGINT with -n: exit 130, target kept, its state read as interrupted (status exit 12)', async () => {
      const p = paths();
      const b = startBackup(env, slow(p, ['-n']));
      await b.copying;
      b.child.kill('SIGINT');
      assert.equal(await b.exited, 130, b.stderr());
      assert.equal(readState(p.target).status, 'running', 'the state file stays running: interrupted once its process is gone');
      const st = await runPgpitr(['status', p.target]);
      assert.equal(st.code, 12, st.stdout + st.stderr);
      assert.match(st.stdout, /interrupted/);
      await nothingLeft(src, version);
    });

    await t.test('the SQL session holding the backup terminated: exit 9, clean-up', async () => {
      const p = paths();
      const b = startBackup(env, slow(p));
      await b.copying;
      const killed = await src.sql<{ ok: boolean }>(`select pg_terminate_backend(pid) ok from pg_stat_activity where application_name = '${APP}'`);
      assert.deepEqual(killed, [{ ok: true }]);
      const t0 = Date.now();
      const code = await b.exited;
      assert.equal(code, 9, `exit ${code}: ${b.stderr()}`);
      assert.ok(Date.now() - t0 < 10_000, `the backup took ${Date.now() - t0} ms to notice its session was gone`);
      assert.match(b.stderr(), /error: .*terminat/i);
      gone(p, 'SQL session terminated');
      await nothingLeft(src, version);
    });

    await t.test('the WAL streaming connection terminated, with -n: exit 9, target kept and marked failed', async () => {
      const p = paths();
      const b = startBackup(env, slow(p, ['-n']));
      await b.copying;
      await eventually('no WAL stream to terminate', async () => (await src.sql("select 1 from pg_stat_replication where state = 'streaming'")).length === 1);
      await src.sql("select pg_terminate_backend(pid) from pg_stat_replication where state = 'streaming'");
      const t0 = Date.now();
      const code = await b.exited;
      assert.equal(code, 9, `exit ${code}: ${b.stderr()}`);
      assert.ok(Date.now() - t0 < 10_000, `the backup took ${Date.now() - t0} ms to notice the WAL stream was gone`);
      assert.match(b.stderr(), /error: /);
      assert.equal(readState(p.target).status, 'failed');
      assert.ok(existsSync(p.ts), 'with -n the relocated tablespace is kept too');
      await nothingLeft(src, version);
    });

    for (const mode of ['fast', 'immediate'] as const) {
      await t.test(`the server stopped (${mode}) mid-backup: exit 9, clean-up`, async () => {
        const p = paths();
        const b = startBackup(env, slow(p));
        await b.copying;
        await src.stop(mode);
        const t0 = Date.now();
        const code = await b.exited;
        assert.equal(code, 9, `exit ${code}: ${b.stderr()}`);
        assert.ok(Date.now() - t0 < 15_000, `the backup took ${Date.now() - t0} ms to notice the server was gone`);
        assert.match(b.stderr(), /error: /);
        gone(p, `stop -m ${mode}`);
        await src.start();
        await nothingLeft(src, version);
      });
    }

    // Item 4, on the same cluster (one fewer to create): a corrupted page in the data
    // directory and one in the tablespace.
    const files: string[] = [];
    for (const [table, where] of [['damaged', ''], ['damaged_ts', ' tablespace ts1']] as const) {
      await src.sql(`create table ${table} (id int, t text) with (autovacuum_enabled = off)${where}`);
      await src.sql(`insert into ${table} select g, repeat(md5(g::text), 4) from generate_series(1, 2000) g`);
      await src.sql(`vacuum freeze ${table}`); // hint bits set now: no later write of its pages
      files.push((await src.sql<{ p: string }>(`select pg_relation_filepath('${table}') p`))[0]!.p);
    }
    await src.sql('checkpoint');
    await src.stop('fast');
    for (const file of files) damageBlockOne(join(src.dataDir, file));
    await src.start();

    // The server's own words, from one BASE_BACKUP stream.
    const refPaths = paths();
    const single = await runPgpitr(['basebackup', '-D', refPaths.target, '-Fp', '-c', 'fast', ...refPaths.map], env);
    assert.equal(single.code, 4, single.stderr);
    const serverLines = [...single.stderr.matchAll(/checksum verification failed in file "([^"]+)", block (\d+): calculated [0-9A-F]+ but expected [0-9A-F]+/g)];
    assert.equal(serverLines.length, 2, single.stderr);
    assert.deepEqual(serverLines.map((m) => m[2]), ['1', '1']);

    for (const format of ['plain', 'tar'] as const) {
      await t.test(`-j 2, ${format}: exit 4, file and block named, target kept and marked failed`, async () => {
        const p = paths();
        const r = await runPgpitr(['basebackup', '-D', p.target, `-F${format[0]}`, '-j', '2', '-c', 'fast', ...(format === 'plain' ? p.map : [])], env);
        assert.equal(r.code, 4, r.stderr);
        for (const line of serverLines) assert.ok(r.stderr.includes(line[0]), `expected the server's warning "${line[0]}" in:\n${r.stderr}`);
        assert.match(r.stderr, /checksum verification failure during base backup/);
        assert.match(r.stderr, /keeping/);
        const state = readState(p.target);
        assert.equal(state.status, 'failed');
        assert.deepEqual(
          [...(state.checksum_failures as string[])].sort(),
          [...(readState(refPaths.target).checksum_failures as string[])].sort(),
          'the state file records the failures as for one stream',
        );
        await nothingLeft(src, version);
        if (format === 'plain') {
          // --resume keeps no copy with a failed page: it fails again, naming them (not a backup complete over them).
          const again = await runPgpitr(['basebackup', '-D', p.target, '-Fp', '-j', '2', '-c', 'fast', '--resume', ...p.map], env);
          assert.equal(again.code, 4, again.stderr);
          for (const line of serverLines) assert.ok(again.stderr.includes(line[0]), `expected "${line[0]}" again in:\n${again.stderr}`);
          assert.equal(readState(p.target).status, 'failed');
          await nothingLeft(src, version);
        }
      });
    }

    await t.test('--no-verify-checksums: the backup completes', async () => {
      const p = paths();
      const r = await runPgpitr(['basebackup', '-D', p.target, '-Fp', '-j', '2', '-c', 'fast', '--no-verify-checksums', ...p.map], env);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /checksum/);
      assert.equal(readState(p.target).status, 'complete');
      await verifyPlainBackup(p.target, version);
    });

    await t.test('pages written during the backup (pgbench, checkpoints) are not reported', async () => {
      await src.sql('drop table damaged; drop table damaged_ts');
      await src.sql('checkpoint');
      await runPgbenchInit(src, 1);
      const load = startPgbenchLoad(src);
      await load.running();
      let stop = false;
      const checkpoints = (async () => {
        while (!stop) {
          await src.sql('checkpoint').catch(() => {});
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      try {
        const p = paths();
        const r = await runPgpitr(['basebackup', '-D', p.target, '-Fp', '-j', '3', '-c', 'fast', ...p.map], env);
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stderr, /checksum/);
        assert.equal(readState(p.target).status, 'complete');
      } finally {
        stop = true;
        load.stop();
        await checkpoints;
      }
      assert.ok(load.transactions() > 0, 'the pgbench load ran no transaction');
    });
  });
}
