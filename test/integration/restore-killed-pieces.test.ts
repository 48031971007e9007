// A restore killed while a large file is being written in pieces by several
// copier threads (restore/file-pieces.ts): a relation file over 64 MiB, from a
// -j 2 backup (whose stored frames are indexed, so that restore cuts the file).
// Killed (SIGKILL) at moments spread over a restore's own duration, measured
// first: after each kill the directory can never be started (no pg_control),
// and the rerun — which resumes as a delta, comparing each file's size and
// digest — rewrites the half-written file and gives a copy that starts and
// holds exactly the table. The kill windows are pgpitr's own: the newest
// tested version proves them.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { archivingCluster, restoreDir, restoreWith, serverManifest, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';
import { checkManifest } from '../helpers/manifest-check.js';
import { RESTORE_MARKER } from '../../src/restore/restore-target-dir.js';
import { runPgpitr, CLI } from '../helpers/pgpitr.js';
import { PIECE_MIN_FILE } from '../../src/restore/file-pieces.js';

for (const version of versionsFromEnv().slice(-1)) {
  test(`a restore killed while a large file's pieces are written never starts; the rerun rewrites it (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const a = await archivingCluster(version, `rkp${version}`);
    const { c } = a;
    // ~95 MB in one relation file (under 1 GiB: one segment), frozen so that nothing changes it meanwhile.
    await c.sql('create table big (id int, v text) with (autovacuum_enabled = off)');
    await c.sql(`insert into big select g, repeat(md5(g::text), 16) from generate_series(1, 170000) g`);
    await c.sql('vacuum (freeze) big');
    const relPath = (await c.sql<{ p: string }>(`select pg_relation_filepath('big') as p`))[0]!.p;
    const size = statSync(join(c.dataDir, relPath)).size;
    assert.ok(size > PIECE_MIN_FILE, `the relation file has ${size} bytes, not enough to be cut in pieces`);
    const want = await tableChecksum(c, 'big');
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '-j', '2', '--output', 'json'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    const id = (JSON.parse(b.stdout) as { id: string }).id;
    await switchAndWaitArchived(c);

    // How long a whole restore takes here: the kills are spread over it.
    const args = ['--set', id, '--target-immediate', '--target-action', 'promote', '--process-max', '2'];
    const t0 = Date.now();
    const whole = await restoreWith(a, restoreDir(c, 'whole'), args);
    const took = Date.now() - t0;
    assert.equal(whole.code, 0, whole.stderr);

    const dir = restoreDir(c, 'killed');
    /** Every file of the restored directory as the backup's backup_manifest records it (before it is started). */
    const asRecorded = async () => {
      await serverManifest(a, id, join(dir, 'backup_manifest'));
      try {
        await checkManifest(dir, ['postgresql.auto.conf', 'recovery.signal', RESTORE_MARKER]);
      } finally {
        rmSync(join(dir, 'backup_manifest'), { force: true });
      }
    };
    const bigFile = join(dir, relPath);
    let midFile = 0;
    let finished = false;
    for (const share of [0.35, 0.5, 0.65, 0.8, 0.9]) {
      const child = spawn(process.execPath, [CLI, 'restore', ...a.repoArgs, '--spool-path', a.spool, '-D', dir, ...args], { stdio: 'ignore' });
      const done = new Promise<{ code: number | null; signal: string | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
      await new Promise((r) => setTimeout(r, Math.round(took * share)));
      child.kill('SIGKILL');
      const end = await done;
      if (end.code === 0) {
        finished = true;
        break;
      }
      // Ended by the kill, not by a failure of its own.
      assert.equal(end.signal, 'SIGKILL', `the restore exited with ${end.code} before its kill at ${share} of a restore`);
      // Each rerun resumes as a delta and has less to write: one may reach its last step, pg_control
      // (written once every other file is synced), before its kill. That restore is whole, which the
      // checks after the loop prove (every file as the backup_manifest records it); it is the last one.
      if (existsSync(join(dir, 'global', 'pg_control'))) {
        t.diagnostic(`the restore killed at ${share} of a restore had written pg_control, its last step`);
        finished = true;
        break;
      }
      if (existsSync(bigFile)) midFile++;
    }
    t.diagnostic(`restore took ${took} ms; the large file was there (whole or in part) after ${midFile} kill(s)`);
    assert.ok(midFile > 0, 'no kill came after the large file was begun: the window this test is for was not reached');
    if (!finished) {
      const rerun = await restoreWith(a, dir, args);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.match(rerun.stderr, /holds a restore that did not finish: resuming it/);
    }
    assert.equal(statSync(bigFile).size, size);
    await asRecorded();
    const copy = await startRecovered(dir, version, `rkp${version}r`);
    try {
      assert.equal(await tableChecksum(copy, 'big'), want);
    } finally {
      await copy.destroy();
    }
  });
}
