// What breaks backups in practice, and what must hold afterwards: a non-zero,
// documented exit code, a message naming the problem, nothing left behind
// (target contents, slots), and no backup left running on the server.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runCommand, isRoot } from '../harness/run.js';
import { runPgpitr, clusterEnv, readState, CLI } from '../helpers/pgpitr.js';
import { eachOf } from '../helpers/each-of.js';

async function noBackupLeft(c: TestCluster): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const rows = await c.sql('select 1 from pg_stat_progress_basebackup');
    if (rows.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(await c.sql('select pid from pg_stat_progress_basebackup'), [], 'a base backup is still running on the server');
  assert.deepEqual(await c.sql("select slot_name from pg_replication_slots where slot_name like 'pgpitr%' or slot_name = 'made_here'"), []);
}

/** Starts a slow backup and resolves once it is streaming files. */
function startSlowBackup(env: NodeJS.ProcessEnv, target: string) {
  const child = spawn(process.execPath, [CLI, 'basebackup', '-D', target, '-r', '512k', '-c', 'fast', '--progress-format=json'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const streaming = new Promise<void>((res, rej) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/"bytes_done":[1-9]/.test(stderr)) res();
    });
    void exited.then(() => rej(new Error(`backup ended before streaming: ${stderr}`)));
  });
  return { child, exited, streaming, stderr: () => stderr };
}

// One version, the newest (its messages); the compatibility matrix backs up on 13-18.
for (const version of versionsFromEnv().slice(-1)) {
  test(`failures exit non-zero and leave nothing behind (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({
      version,
      name: `fail${version}`,
      conf: { password_encryption: 'scram-sha-256' },
      hba: ['host replication repl 127.0.0.1/32 scram-sha-256', 'host replication rejected 127.0.0.1/32 reject', 'local replication sockpw scram-sha-256'],
    });
    await createSampleData(src, { rows: 20000 });
    await src.sql("create role repl login replication password 'secret'; create role norepl login; create role rejected login replication; create role sockpw login replication password 'sock-secret'");
    const env = clusterEnv(src);
    const tcp = { ...env, PGHOST: '127.0.0.1' };

    await t.test('wrong password', async () => {
      const out = join(src.tempDir('pw'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-U', 'repl', '-w'], { ...tcp, PGPASSWORD: 'wrong' });
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /password authentication failed for user "repl"/);
      assert.ok(!existsSync(out), 'target directory was left behind');
      const ok = await runPgpitr(['basebackup', '-D', out, '-U', 'repl', '-c', 'fast'], { ...tcp, PGPASSWORD: 'secret' });
      assert.equal(ok.code, 0, ok.stderr);
    });

    await t.test('a password asked for over the Unix socket comes from ~/.pgpass', async () => {
      // Without a password given, the start-up first goes without node-postgres, and
      // hands over to it when the server asks for one (which reads PGPASSFILE).
      const dir = src.tempDir('sockpw');
      const pgpass = join(dir, 'pgpass');
      writeFileSync(pgpass, '*:*:*:sockpw:sock-secret\n', { mode: 0o600 });
      const out = join(dir, 'b');
      const none = await runPgpitr(['basebackup', '-D', out, '-U', 'sockpw', '-w'], { ...env, PGPASSFILE: join(dir, 'missing') });
      assert.equal(none.code, 3, none.stderr);
      assert.match(none.stderr, /password/i);
      assert.ok(!existsSync(out));
      const ok = await runPgpitr(['basebackup', '-D', out, '-U', 'sockpw', '-c', 'fast'], { ...env, PGPASSFILE: pgpass });
      assert.equal(ok.code, 0, ok.stderr);
    });

    await t.test('role without REPLICATION', async () => {
      const out = join(src.tempDir('norepl'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-U', 'norepl'], env);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /replication|superuser/i);
      assert.match(r.stderr, /hint:/);
      assert.ok(!existsSync(out));
    });

    await t.test('pg_hba.conf rejects replication', async () => {
      const out = join(src.tempDir('hba'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-U', 'rejected'], tcp);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /pg_hba\.conf/);
      assert.ok(!existsSync(out));
    });

    await t.test('replication slot that does not exist', async () => {
      const out = join(src.tempDir('noslot'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-S', 'no_such_slot', '-c', 'fast'], env);
      assert.notEqual(r.code, 0);
      if (version >= 15) assert.equal(r.code, 6, r.stderr);
      assert.match(r.stderr, /replication slot "no_such_slot" does not exist/);
      assert.ok(!existsSync(out));
      await noBackupLeft(src);
    });

    await t.test('-n keeps a failed backup and status says failed', async () => {
      const out = join(src.tempDir('keep'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-n', '-S', 'no_such_slot', '-c', 'fast'], env);
      assert.notEqual(r.code, 0);
      assert.equal(readState(out).status, 'failed');
      const st = await runPgpitr(['status', out]);
      assert.equal(st.code, 11, st.stdout + st.stderr);
      assert.match(st.stdout, /failed/);
      // Not connected (a password wanted, a server down): nothing was written but the state file, and -n keeps nothing (so that a password prompt can run again).
      const never = join(src.tempDir('keep-unconnected'), 'b');
      const down = await runPgpitr(['basebackup', '-D', never, '-n', '-p', '1', '-h', '127.0.0.1'], env);
      assert.notEqual(down.code, 0);
      assert.ok(!existsSync(never), down.stderr);
    });

    await t.test('non-empty target is refused and untouched', async () => {
      const out = src.tempDir('nonempty');
      writeFileSync(join(out, 'precious'), 'keep me');
      const r = await runPgpitr(['basebackup', '-D', out], env);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /exists but is not empty/);
      assert.deepEqual(readdirSync(out), ['precious']);
    });

    await t.test('invalid options and combinations', async () => {
      const cases: [string[], RegExp][] = [
        [['basebackup'], /no target directory specified/],
        [['basebackup', '-D', '/tmp/x', '-F', 'z'], /invalid output format "z"/],
        [['basebackup', '-D', '/tmp/x', '-X', 'bogus'], /invalid wal-method option/],
        [['basebackup', '-D', '/tmp/x', '-c', 'slow'], /invalid checkpoint argument/],
        [['basebackup', '-D', '/tmp/x', '-r', '10'], /out of range/],
        [['basebackup', '-D', '/tmp/x', '-r', 'abc'], /invalid transfer rate/],
        [['basebackup', '-D', '-', '-Fp'], /plain format/],
        [['basebackup', '-D', '-', '-Ft'], /cannot stream write-ahead logs in tar mode to stdout/],
        [['basebackup', '-D', '-', '-Ft', '-X', 'fetch', '-j', '2'], /cannot fetch write-ahead logs with -j in tar mode to stdout/],
        [['basebackup', '-D', '/tmp/x', '-S', 's', '-X', 'fetch'], /replication slots can only be used with WAL streaming/],
        [['basebackup', '-D', '/tmp/x', '-C'], /--create-slot needs a slot/],
        [['basebackup', '-D', '/tmp/x', '--no-slot', '-S', 's'], /--no-slot cannot be used with slot name/],
        [['basebackup', '-D', '/tmp/x', '-z'], /only tar mode backups can be compressed/],
        [['basebackup', '-D', '/tmp/x', '-Ft', '-Z', 'brotli'], /unrecognized compression algorithm/],
        [['basebackup', '-D', '/tmp/x', '-Ft', '-Z', 'gzip:42'], /error: invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 \(default at -1\)/],
        [['basebackup', '-D', '/tmp/x', '-Ft', '-Z', 'server-gzip:'], /error: invalid compression specification: found empty string where a compression option was expected/],
        [['basebackup', '-D', '/tmp/x', '-T', 'relative=/abs'], /old directory is not an absolute path/],
        [['basebackup', '-D', '/tmp/x', '-T', '/abs'], /invalid tablespace mapping format/],
        [['basebackup', '-D', '/tmp/x', '-Ft', '--waldir', '/w'], /only be specified in plain mode/],
        [['basebackup', '-D', '/tmp/x', '-P', '--no-estimate-size'], /incompatible options/],
        [['basebackup', '-D', '/tmp/x', '--no-manifest', '--manifest-checksums', 'SHA256'], /incompatible options/],
        [['basebackup', '-D', '/tmp/x', '-t', 'server:/x'], /cannot specify both output directory and backup target/],
        [['basebackup', '-t', 'server:/x'], /WAL cannot be streamed when a backup target is specified/],
        [['basebackup', '-t', 'server'], /requires a target detail/],
        [['basebackup', '-D', '/tmp/x', '--bogus'], /unrecognized option "--bogus"/],
        [['basebackup', '-D', '/tmp/x', 'extra'], /too many command-line arguments/],
      ];
      // Usage errors, refused before anything is written or connected to: four processes at a time.
      await eachOf(cases, 4, async ([args, msg]) => {
        const r = await runPgpitr(args, env);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, msg, args.join(' '));
      });
      assert.ok(!existsSync('/tmp/x'));
    });

    await t.test('killed client: status says interrupted, server aborts its backup', async () => {
      const out = join(src.tempDir('killed'), 'b');
      const b = startSlowBackup(env, out);
      await b.streaming;
      b.child.kill('SIGKILL');
      await b.exited;
      const st = await runPgpitr(['status', out, '--output', 'json']);
      assert.equal(st.code, 12, st.stdout + st.stderr);
      assert.equal(JSON.parse(st.stdout).assessed_status, 'interrupted');
      await noBackupLeft(src);
    });

    await t.test('SIGTERM: clean-up and exit 130', async () => {
      const out = join(src.tempDir('term'), 'b');
      const b = startSlowBackup(env, out);
      await b.streaming;
      b.child.kill('SIGTERM');
      assert.equal(await b.exited, 130, b.stderr());
      assert.ok(!existsSync(out), 'target left behind after SIGTERM');
      await noBackupLeft(src);
    });

    await t.test('target disk full', { skip: !isRoot() && 'needs root to mount a tmpfs' }, async () => {
      const mnt = src.tempDir('small');
      const m = await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
      if (m.code !== 0) {
        t.diagnostic(`cannot mount tmpfs here: ${m.stderr}`);
        return;
      }
      try {
        const out = join(mnt, 'b');
        const r = await runPgpitr(['basebackup', '-D', out, '-c', 'fast'], env);
        assert.equal(r.code, 5, r.stderr);
        assert.match(r.stderr, /No space left on device|ENOSPC/);
        assert.match(r.stderr, /hint: free space/);
        assert.deepEqual(readdirSync(mnt), []);
        await noBackupLeft(src);
      } finally {
        await runCommand('umount', [mnt]);
      }
    });

    await t.test('server stopped mid-backup', async () => {
      const out = join(src.tempDir('stopped'), 'b');
      const b = startSlowBackup(env, out);
      await b.streaming;
      await src.stop('fast');
      const code = await b.exited;
      assert.equal(code, 9, `exit ${code}: ${b.stderr()}`); // the connection was lost, not refused (docs/exit-codes.md)
      assert.match(b.stderr(), /error: /);
      assert.ok(!existsSync(out), 'target left behind');
      await src.start();
      await noBackupLeft(src);
    });

    await t.test('max_wal_senders exhausted', async () => {
      await src.sql('alter system set max_wal_senders = 1');
      await src.restart();
      const out = join(src.tempDir('senders'), 'b');
      mkdirSync(out);
      const r = await runPgpitr(['basebackup', '-D', out, '-X', 'stream', '-c', 'fast'], env);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /max_wal_senders/);
      assert.deepEqual(readdirSync(out), [], 'an existing empty target must be emptied, not removed');
      await noBackupLeft(src);
      await src.sql('alter system reset max_wal_senders');
      await src.restart();
    });
  });
}
