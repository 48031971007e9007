// A damaged page in the source (bytes flipped in a block of a relation file): the repository
// backup completes all the same, as pgBackRest's does, with the page checksum failure warned of,
// recorded and shown by info; restore says so and brings back everything else. (basebackup, the
// pg_basebackup drop-in, fails as pg_basebackup does: parallel-backup-faults.test.ts.)

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { basename, join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, tableChecksum } from '../helpers/pitr.js';
import { damageBlockOne } from '../helpers/damaged-page.js';

// One version: the server's warnings are the same words on 13-18, and -j's readers word them so.
for (const version of versionsFromEnv().slice(-1)) {
  test(`a damaged page in the source: the repository backup completes and names it, restore brings back the rest (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `dmg${version}`);
    const { c } = a;
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, md5(g::text) from generate_series(1, 1000) g`);
    await c.sql('create table damaged (id int, t text) with (autovacuum_enabled = off)');
    await c.sql(`insert into damaged select g, repeat(md5(g::text), 4) from generate_series(1, 2000) g`);
    await c.sql('vacuum freeze damaged'); // hint bits set now: no later write of its pages
    const file = (await c.sql<{ p: string }>(`select pg_relation_filepath('damaged') p`))[0]!.p;
    const expected = await tableChecksum(c);
    await c.sql('checkpoint');
    await c.stop('fast');
    damageBlockOne(join(c.dataDir, file));
    await c.start();
    const env = c.connectionEnv();
    const named = new RegExp(`checksum verification failed in file "[^"]*${basename(file)}", block 1`);

    for (const jobs of [[], ['-j', '2']]) {
      await t.test(jobs.length > 0 ? 'backup -j 2' : 'backup, one stream', async () => {
        const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', ...jobs, '--output', 'json'], env);
        assert.equal(b.code, 0, b.stderr);
        assert.match(b.stderr, named);
        assert.match(b.stderr, /the source has damaged pages/);
        const id = (JSON.parse(b.stdout) as { id: string }).id;
        const info = await runPgpitr(['info', ...a.repoArgs, '--set', id]);
        assert.equal(info.code, 0, info.stderr);
        assert.match(info.stdout, /DAMAGED PAGES in the source: 1 page checksum failure\(s\), stored as they were:/);
        assert.match(info.stdout, named);
        const json = JSON.parse((await runPgpitr(['info', ...a.repoArgs, '--output', 'json'])).stdout) as { stanzas: { backups: { id: string; state: string; page_checksum_failures: string[] }[] }[] };
        const listed = json.stanzas[0]!.backups.find((x) => x.id === id)!;
        assert.equal(listed.state, 'complete');
        assert.ok(listed.page_checksum_failures.some((m) => named.test(m)));

        const dir = restoreDir(c, `dmg-${jobs.length}`);
        const r = await restoreWith(a, dir, ['--set', id, '--target-immediate', '--target-action', 'promote']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout + r.stderr, new RegExp(`backup ${id} met page checksum failures in its source`));
        const copy = await startRecovered(dir, version, `dmgr${version}${jobs.length}`);
        try {
          assert.equal(await tableChecksum(copy), expected);
          await assert.rejects(copy.sql('select count(*) from damaged'), /invalid page|checksum verification failed/);
        } finally {
          await copy.destroy();
        }
      });
    }

    await t.test('an incr -j 2 takes the damaged file unchanged from the full backup: the failure is carried into its record', async () => {
      const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--type', 'incr', '-j', '2', '--output', 'json'], env);
      assert.equal(b.code, 0, b.stderr);
      const rec = JSON.parse(b.stdout) as { id: string; type: string };
      assert.equal(rec.type, 'incr');
      const info = await runPgpitr(['info', ...a.repoArgs, '--set', rec.id]);
      assert.match(info.stdout, /DAMAGED PAGES in the source: 1 page checksum failure\(s\)/);
      assert.match(info.stdout, new RegExp(`${named.source}.*\\(in backup \\d{8}-\\d{6}F, whose copy of the file this backup takes\\)`));
    });

    await t.test('an incr in one stream reads the damaged file again but takes the full backup\'s copy: says so, records the full\'s failure, not its own', async () => {
      const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--type', 'incr', '--output', 'json'], env);
      assert.equal(b.code, 0, b.stderr);
      const rec = JSON.parse(b.stdout) as { id: string; type: string };
      assert.equal(rec.type, 'incr');
      assert.match(b.stderr, new RegExp(`the source's .*${basename(file)} has damaged pages \\(above\\), but its size and time did not change since backup \\d{8}-\\d{6}F.*this backup takes that backup's copy`));
      assert.doesNotMatch(b.stderr, /they are stored as they are/);
      const info = await runPgpitr(['info', ...a.repoArgs, '--set', rec.id]);
      assert.match(info.stdout, new RegExp(`${named.source}.*\\(in backup \\d{8}-\\d{6}F, whose copy of the file this backup takes\\)`));
    });

    await t.test('with client_min_messages above warning (no per-block warnings reach the client), the failure is recorded all the same', async () => {
      const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], { ...env, PGOPTIONS: '-c client_min_messages=error' });
      assert.equal(b.code, 0, b.stderr);
      const id = (JSON.parse(b.stdout) as { id: string }).id;
      const info = await runPgpitr(['info', ...a.repoArgs, '--set', id]);
      assert.match(info.stdout, /DAMAGED PAGES in the source: .*stored as they were:/);
      assert.match(info.stdout, /checksum verification failure during base backup/);
    });
  });
}
