// Where a real server's backup goes, beyond the plain target: --waldir (pg_wal
// is a link to it, and what base.tar has under pg_wal is written there, not
// through the link), and standard output (-D -) that cannot take the backup:
// a reader that closes the pipe, a full device. A failure there is one clean
// error line with a hint and exit 5, never a crash, never exit 0 for a
// truncated backup, and the server's backup ends with the connection.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, verifyPlainBackup, CLI } from '../helpers/pgpitr.js';

const WAL_FILE = /^[0-9A-F]{24}$/;

/** The server has no base backup running and no WAL sender left once the client is gone. */
async function serverBackupEnded(c: TestCluster): Promise<void> {
  const busy = async () => (await c.sql("select 1 from pg_stat_activity where backend_type = 'walsender' union all select 1 from pg_stat_progress_basebackup")).length;
  for (let i = 0; i < 100 && (await busy()) > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await busy(), 0, 'a WAL sender or base backup is still running on the server');
}

/** Runs `basebackup -D - -Ft -X fetch` with the given stdout; `onStdout` may close the pipe. */
function backupToStdout(env: NodeJS.ProcessEnv, stdout: 'pipe' | number, onStdout?: (chunk: Buffer, close: () => void) => void) {
  const child = spawn(process.execPath, [CLI, 'basebackup', '-D', '-', '-Ft', '-X', 'fetch', '-c', 'fast'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  if (child.stdout) child.stdout.on('data', (d: Buffer) => onStdout?.(d, () => child.stdout!.destroy()));
  return new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

function assertCleanError(r: { code: number | null; signal: string | null; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 5, `exit ${r.code} (signal ${r.signal}): ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.match(r.stderr, /^pgpitr: hint: /m);
  assert.doesNotMatch(r.stderr, /Unhandled 'error' event|\n\s+at /, 'a crash or a stack trace instead of an error line');
}

for (const version of versionsFromEnv()) {
  test(`--waldir and standard output (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `out${version}` });
    await createSampleData(src, { rows: 2000 });
    const env = clusterEnv(src);

    for (const method of ['fetch', 'stream']) {
      await t.test(`--waldir with -X ${method}: WAL goes to the WAL directory`, async () => {
        const dir = src.tempDir(`waldir-${method}`);
        const out = join(dir, 'data');
        const wal = join(dir, 'wal');
        const r = await runPgpitr(['basebackup', '-D', out, '--waldir', wal, '-X', method, '-c', 'fast'], env);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(lstatSync(join(out, 'pg_wal')).isSymbolicLink());
        assert.equal(readlinkSync(join(out, 'pg_wal')), wal);
        assert.ok(readdirSync(wal).some((f) => WAL_FILE.test(f)), `no WAL in ${wal}: ${readdirSync(wal).join(' ')}`);
        assert.ok(existsSync(join(wal, 'archive_status')));
        await verifyPlainBackup(out, version);
      });
    }

    await t.test('-D - whose reader closes the pipe (| head -c 1000)', async () => {
      let got = 0;
      const r = await backupToStdout(env, 'pipe', (chunk, close) => {
        got += chunk.length;
        if (got >= 1000) close();
      });
      assert.ok(got >= 1000);
      assertCleanError(r, /could not write to standard output.*(EPIPE|broken pipe)/i);
      await serverBackupEnded(src);
    });

    await t.test('-D - to a full device (> /dev/full)', async () => {
      const fd = openSync('/dev/full', 'w');
      try {
        const r = await backupToStdout(env, fd);
        assertCleanError(r, /could not write to standard output.*(ENOSPC|no space)/i);
      } finally {
        closeSync(fd);
      }
      await serverBackupEnded(src);
    });
  });
}
