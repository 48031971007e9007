// A backup taken on timeline 2 whose history file is not in the archive (lost, never archived):
// restore along the backup's own timeline (--target-timeline current, or its number) must give a
// server that starts. PostgreSQL asks a numbered recovery_target_timeline above 1 for its
// history file (FATAL "recovery target timeline 2 does not exist"), 'current' does not: restore
// writes 'current' for the backup's own timeline. Following the latest timeline is refused
// before anything is written, naming the missing history file.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`restore along the backup's own timeline 2 without its history file in the archive (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `tlc${version}`);
    const { c } = a;
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, 'one' from generate_series(1, 1000) g`);
    const b1 = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b1.code, 0, b1.stderr);
    await c.stop();

    // Restored and promoted: timeline 2, archiving into the stanza; a backup of it.
    const two = restoreDir(c, 'two');
    const r2 = await restoreWith(a, two, ['--target-immediate', '--target-action', 'promote']);
    assert.equal(r2.code, 0, r2.stderr);
    const copy = await startRecovered(two, version, `tlc2${version}`, { archive: true });
    assert.equal((await copy.sql<{ t: string }>('select timeline_id::text as t from pg_control_checkpoint()'))[0]!.t, '2');
    await copy.sql(`insert into pitr select g, 'two' from generate_series(1001, 1100) g`);
    const b2 = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], copy.connectionEnv());
    assert.equal(b2.code, 0, b2.stderr);
    const id = (JSON.parse(b2.stdout) as { id: string }).id;
    const atBackup = await tableChecksum(copy);
    await switchAndWaitArchived(copy);
    await copy.destroy();

    // The history file of timeline 2 goes missing from the archive.
    const archive = join(a.repo, 'main', 'archive');
    const found: string[] = [];
    for (const d of readdirSync(archive, { withFileTypes: true })) {
      if (d.isFile() && d.name.startsWith('00000002.history')) found.push(join(archive, d.name));
      if (d.isDirectory()) for (const n of readdirSync(join(archive, d.name))) if (n.startsWith('00000002.history')) found.push(join(archive, d.name, n));
    }
    assert.equal(found.length, 1, `the history file of timeline 2 is archived once: ${found.join(' ')}`);
    renameSync(found[0]!, join(c.tempDir('aside'), 'history'));

    const latest = await restoreWith(a, restoreDir(c, 'latest'), ['--set', id, '--target-immediate']);
    assert.notEqual(latest.code, 0);
    assert.match(latest.stderr, /history file 00000002\.history of timeline 2 is not in the archive/);

    for (const timeline of ['current', '2']) {
      await t.test(`--target-timeline ${timeline}`, async () => {
        const dir = restoreDir(c, `own-${timeline}`);
        const r = await restoreWith(a, dir, ['--set', id, '--target-timeline', timeline, '--target-immediate', '--target-action', 'promote']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8'), /^recovery_target_timeline = 'current'$/m);
        const restored = await startRecovered(dir, version, `tlc${timeline}${version}`);
        try {
          assert.equal(await tableChecksum(restored), atBackup);
        } finally {
          await restored.destroy();
        }
      });
    }
  });
}
