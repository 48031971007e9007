// A point-in-time recovery in place makes timeline 2, whose first segment (timeline 1's WAL up to
// the fork, then its own) is archived only once it fills: until then the archive holds timeline 2's
// history file and none of its WAL, while timeline 1's segment of that number, and later ones, hold
// what timeline 1 went on with past the fork. PostgreSQL, following timeline 2, asks for timeline 2's
// file, then for timeline 1's, and would replay the abandoned transactions: archive-get (and the
// prefetch) never give it, and restore to the end of the archive refuses, saying how to go on.
// Timeline choice is pgpitr's own: one version proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

for (const version of versionsFromEnv().slice(-1)) {
  test(`a newer timeline with no WAL archived yet (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `unb${version}`);
    const { c } = a;
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, 'base' from generate_series(1, 1000) g`);
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    await c.sql(`insert into pitr select g, 'keep' from generate_series(1001, 1100) g`);
    const atKeep = await tableChecksum(c);
    await switchAndWaitArchived(c);
    await c.sql(`select pg_create_restore_point('before')`);
    await c.sql(`insert into pitr select g, 'lost' from generate_series(2001, 2100) g`);
    await switchAndWaitArchived(c);
    await c.sql(`insert into pitr select g, 'lost' from generate_series(3001, 3100) g`);
    await switchAndWaitArchived(c);
    await c.stop();

    // Back to "before", promoted, archiving into the stanza; stopped before its first segment is archived.
    const two = restoreDir(c, 'two');
    const r2 = await restoreWith(a, two, ['--target-name', 'before', '--target-action', 'promote']);
    assert.equal(r2.code, 0, r2.stderr);
    const copy = await startRecovered(two, version, `unb-two${version}`, { archive: true });
    assert.equal(await tableChecksum(copy), atKeep);
    const archive = join(a.repo, 'main', 'archive');
    for (let i = 0; i < 300 && !readdirSync(archive).some((n) => n.startsWith('00000002.history')); i++) await new Promise((r) => setTimeout(r, 200));
    assert.ok(readdirSync(archive).some((n) => n.startsWith('00000002.history')), 'the promotion archived its history file');
    await copy.stop('immediate');
    assert.ok(!readdirSync(archive).some((n) => n.startsWith('00000002') && !n.includes('.history')), `no WAL of timeline 2 archived: ${readdirSync(archive).join(', ')}`);

    let first = '';
    await t.test('restore to the end of the archive is refused, naming the segment timeline 2 lacks', async () => {
      const r = await restoreWith(a, restoreDir(c, 'refused'), ['--dry-run']);
      assert.equal(r.code, 6, r.stderr);
      const m = /timeline 2 has no WAL archived yet: its first segment 00000002([0-9A-F]{16}) .*would end at 00000001[0-9A-F]{16}, before the fork/.exec(r.stderr);
      assert.ok(m, r.stderr);
      first = m[1]!;
      assert.match(r.stderr, /--target-timeline 1/);
    });

    await t.test('with --accept-archive-gap, recovery ends before the fork: timeline 1\'s abandoned WAL is never replayed', async () => {
      const dir = restoreDir(c, 'three');
      const r = await restoreWith(a, dir, ['--accept-archive-gap']);
      assert.equal(r.code, 0, r.stderr);
      const three = await startRecovered(dir, version, `unb-three${version}`);
      try {
        assert.equal(await tableChecksum(three), atKeep, three.logTail());
        assert.equal((await three.sql<{ n: string }>(`select count(*)::text as n from pitr where v = 'lost'`))[0]!.n, '0');
        // Timeline 1's file of that number is never given (by the prefetch's fetcher or archive-get).
        assert.ok(!three.log().includes(`restored log file "00000001${first}"`), three.log());
      } finally {
        await three.destroy();
      }
    });
  });
}
