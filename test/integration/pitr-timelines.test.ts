// Timelines as in the training module's illustration (seed 001): a restore to
// a point before an accident, promoted, becomes timeline 2 and archives into
// the same stanza; a later restore follows timeline 2 to a point written
// there; another goes back to timeline 1, before the fork and (with
// --target-timeline 1) after it, on the future that was abandoned. History
// files are archived and used.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, fetcherStoppedByRecoveryEnd, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

// One version: timeline choice is pgpitr's own; the PITR matrix recovers on 13-18.
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`recovery along timelines (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `tli${version}`);
    const { c } = a;
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, 'base' from generate_series(1, 1000) g`);
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    const step = async (db: typeof c, n: number, point: string) => {
      await db.sql(`insert into pitr select g, '${point}' from generate_series(${n * 1000 + 1}, ${n * 1000 + 100}) g`);
      await db.sql(`select pg_create_restore_point('${point}')`);
      return tableChecksum(db);
    };
    const atA0 = await step(c, 1, 'a0');
    const atA = await step(c, 2, 'a');
    await c.sql(`delete from pitr where id <= 500`); // the accident
    const atC = await step(c, 3, 'c'); // on timeline 1, after the fork to come
    await switchAndWaitArchived(c);
    await c.stop();

    // Back to "a", promoted: timeline 2, archiving into the same stanza.
    const two = restoreDir(c, 'two');
    const r2 = await restoreWith(a, two, ['--target-name', 'a', '--target-action', 'promote']);
    assert.equal(r2.code, 0, r2.stderr);
    const copy = await startRecovered(two, version, `two${version}`, { archive: true });
    // The promoted server archives timeline 2 into the stanza: the fetcher stops at once, not when idle.
    await fetcherStoppedByRecoveryEnd(a.spool);
    assert.equal(await tableChecksum(copy), atA);
    assert.equal((await copy.sql<{ t: string }>('select timeline_id::text as t from pg_control_checkpoint()'))[0]!.t, '2');
    const atB = await step(copy, 4, 'b');
    await switchAndWaitArchived(copy);
    await t.test('a stanza created after the promotion: the backup stores the timeline\'s history file, and restore\'s defaults work', async () => {
      // PostgreSQL archived 00000002.history once, at the promotion, into the old stanza only.
      const fresh = c.tempDir('fresh-repo');
      const args = ['--repo', fresh, '--stanza', 'main'];
      const env = copy.connectionEnv();
      const created = await runPgpitr(['stanza-create', ...args], env);
      assert.equal(created.code, 0, created.stderr);
      const b2 = await runPgpitr(['backup', ...args, '--start-fast', '--wal=included'], env);
      assert.equal(b2.code, 0, b2.stderr);
      assert.equal(readdirSync(join(fresh, 'main', 'archive')).filter((n) => n.startsWith('00000002.history')).length, 1);
      const dir = restoreDir(c, 'fresh-restored');
      const r = await runPgpitr(['restore', ...args, '--spool-path', a.spool, '-D', dir, '--target-immediate', '--target-action', 'promote']);
      assert.equal(r.code, 0, r.stderr);
      const back = await startRecovered(dir, version, `fresh${version}`);
      try {
        assert.equal(await tableChecksum(back), atB);
      } finally {
        await back.destroy();
      }
    });
    await copy.destroy();
    const history = readdirSync(join(a.repo, 'main', 'archive')).filter((n) => n.startsWith('00000002.history'));
    assert.equal(history.length, 1, 'the history file of timeline 2 is archived');

    const cases: { name: string; args: string[]; expect: string }[] = [
      { name: 'following timeline 2 to a point written there', args: ['--target-name', 'b'], expect: atB },
      { name: 'on timeline 1 before the fork (latest branch)', args: ['--target-name', 'a0'], expect: atA0 },
      { name: 'on timeline 1 after the fork (--target-timeline 1)', args: ['--target-name', 'c', '--target-timeline', '1'], expect: atC },
    ];
    for (const k of cases) {
      await t.test(k.name, async () => {
        const dir = restoreDir(c, k.name.replace(/[^a-z0-9]+/g, '-').slice(0, 30));
        const r = await restoreWith(a, dir, [...k.args, '--target-action', 'promote']);
        assert.equal(r.code, 0, r.stderr);
        const copy = await startRecovered(dir, version, `tl${version}${k.expect.slice(0, 4)}`);
        try {
          assert.equal(await tableChecksum(copy), k.expect, copy.logTail());
          assert.match(copy.log(), /restored log file "00000002\.history" from archive/);
        } finally {
          await copy.destroy();
        }
      });
    }

    await t.test('the old primary started again on timeline 1 and backed up: info and check say restore\'s defaults no longer reach it', async () => {
      // What a promoted copy archiving into the production stanza does to it: timeline 2 is the
      // archive's latest, and a backup of the server that went on on timeline 1 is left behind.
      await c.start();
      const env = c.connectionEnv();
      const b1 = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], env);
      assert.equal(b1.code, 0, b1.stderr);
      const id = (JSON.parse(b1.stdout) as { id: string }).id;
      const info = await runPgpitr(['info', ...a.repoArgs]);
      assert.equal(info.code, 0, info.stderr);
      assert.match(info.stdout, /only with --target-timeline current: backup .* is not on the branch of timeline 2/);
      // ... and that restore's defaults refuse every target for now, as check and restore say below.
      assert.match(info.stdout, /RESTORE WITHOUT --target-timeline OR --set REFUSES FOR NOW: the newest timeline of the archive, 2, may not be this cluster's present: timeline 1 .*; give --target-timeline 1 /);
      const infoJson = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      const refused = (JSON.parse(infoJson.stdout) as { stanzas: { defaults_refused: { message: string; hint: string; for_now: boolean } | null }[] }).stanzas[0]!.defaults_refused;
      assert.equal(refused?.for_now, true, infoJson.stdout);
      assert.match(refused.message, /may not be this cluster's present/);
      const check = await runPgpitr(['check', ...a.repoArgs], env);
      assert.equal(check.code, 7, check.stdout + check.stderr);
      assert.match(check.stdout, new RegExp(`FAIL recovery: restore with its defaults \\(the latest timeline\\) cannot recover past backup ${id}, which only --target-timeline current reaches`));
      assert.match(check.stdout, /hint: .*if a restored copy was promoted with this stanza's archive_command, give it its own stanza/);
      // ... and that restore's defaults refuse the latest timeline, as restore itself says below: a
      // warning, as what timeline 2's next archived segment would end (an old primary's leftovers).
      assert.match(check.stdout, /ok {3}recovery: warning: restore with its defaults \(no --set, the latest timeline\) refuses for now: the newest timeline of the archive, 2, may not be this cluster's present: timeline 1 /);
      // restore with its defaults (the latest timeline): refused before anything is written, whatever
      // the target: timeline 1 was archived past its fork after timeline 2 began (the backup's WAL),
      // both stamped by the repository's clock, so within seconds of the promotion too.
      for (const target of [[], ['--target-time', new Date().toISOString().replace('Z', '+00')]]) {
        const dry = await restoreWith(a, restoreDir(c, 'went-on'), ['--dry-run', ...target]);
        assert.equal(dry.code, 7, dry.stderr);
        assert.match(dry.stderr, /the newest timeline of the archive, 2, may not be this cluster's present: timeline 1 (went on being archived, past its fork|is archived now)/);
        assert.match(dry.stderr, /--target-timeline 1 .*--target-timeline 2/);
      }
      await c.stop();
    });
  });
}
