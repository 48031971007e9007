// restore --waldir: pg_wal as a link to a directory of its own (WAL on its own
// disk, as initdb --waldir makes it). The restored cluster recovers with the
// archive's WAL landing there; a delta restore over it keeps the link when
// given --waldir again (only then: a link alone may lead to another cluster's
// WAL), and removes the old WAL files there and nothing else; a delta to the end of the archive
// over the stopped original is refused while its pg_wal holds WAL the archive lacks (the segment of
// a clean stop's shutdown checkpoint alone is none); a directory that
// holds something else, or /, is refused before anything is written. What is tested is where pgpitr writes, the same
// on every version: the newest tested version proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { cpSync, existsSync, lstatSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

const SEGMENT = /^[0-9A-F]{24}$/;

for (const version of versionsFromEnv().slice(-1)) {
  test(`restore --waldir (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `wdir${version}`);
    const { c } = a;
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, 'base' from generate_series(1, 1000) g`);
    const b = await runPgpitr(['backup', ...a.repoArgs, '--start-fast'], c.connectionEnv());
    assert.equal(b.code, 0, b.stderr);
    await c.sql(`insert into pitr select g, 'after' from generate_series(1001, 1200) g`);
    const expected = await tableChecksum(c);
    await switchAndWaitArchived(c);
    await c.stop();

    const dir = restoreDir(c, 'data');
    const wal = join(restoreDir(c, 'waldisk'), 'wal');

    await t.test('a directory holding something else is refused, nothing written', async () => {
      const foreign = restoreDir(c, 'foreign');
      writeFileSync(join(foreign, 'notes.txt'), 'not WAL\n');
      const r = await restoreWith(a, dir, ['--waldir', foreign]);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /WAL directory ".*foreign" exists and is not empty/);
      assert.deepEqual(readdirSync(dir), []);
      assert.deepEqual(readdirSync(foreign), ['notes.txt']);
      const inside = await restoreWith(a, dir, ['--waldir', join(dir, 'wal')]);
      assert.equal(inside.code, 2, inside.stderr);
      assert.match(inside.stderr, /is inside the data directory/);
    });

    await t.test('pg_wal links to the directory, and recovery replays the archive there', async () => {
      const r = await restoreWith(a, dir, ['--waldir', wal]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(lstatSync(join(dir, 'pg_wal')).isSymbolicLink());
      assert.equal(readlinkSync(join(dir, 'pg_wal')), wal);
      assert.ok(readdirSync(wal).includes('archive_status'));
      const copy = await startRecovered(dir, version, `wdir-a${version}`);
      try {
        assert.equal(await tableChecksum(copy), expected, copy.logTail());
        await copy.sql('checkpoint');
      } finally {
        await copy.stop();
      }
      assert.ok(readdirSync(wal).some((n) => SEGMENT.test(n)), `no segment in ${wal}: ${readdirSync(wal).join(', ')}`);
    });

    await t.test('--delta without --waldir does not trust the link; with it, the old WAL files go and nothing else', async () => {
      const old = readdirSync(wal).filter((n) => SEGMENT.test(n));
      writeFileSync(join(wal, 'notes.txt'), 'not WAL\n');
      const bare = await restoreWith(a, dir, ['--delta', '--dry-run']);
      assert.equal(bare.code, 0, bare.stderr);
      assert.match(bare.stdout + bare.stderr, /warning: pg_wal is a link to .*wal: it becomes a directory in the data directory .*restore with --waldir/);
      const r = await restoreWith(a, dir, ['--delta', '--waldir', wal]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readlinkSync(join(dir, 'pg_wal')), wal);
      const now = readdirSync(wal);
      assert.ok(!now.some((n) => old.includes(n)), `old WAL left in ${wal}: ${now.join(', ')}`);
      assert.ok(now.includes('notes.txt'), 'a file that is not WAL is left alone');
      const copy = await startRecovered(dir, version, `wdir-b${version}`);
      try {
        assert.equal(await tableChecksum(copy), expected, copy.logTail());
      } finally {
        await copy.destroy();
      }
    });

    await t.test("--delta over a target whose global is a link (to a copy of the same system): the copy keeps its pg_control", async () => {
      const target = restoreDir(c, 'linked-global');
      assert.equal((await restoreWith(a, target, [])).code, 0);
      const sibling = restoreDir(c, 'sibling');
      cpSync(join(target, 'global'), join(sibling, 'global'), { recursive: true });
      rmSync(join(target, 'global'), { recursive: true });
      symlinkSync(join(sibling, 'global'), join(target, 'global'));
      const r = await restoreWith(a, target, ['--delta']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(join(sibling, 'global', 'pg_control')), "the copy's pg_control is left alone");
      assert.ok(lstatSync(join(target, 'global')).isDirectory());
      assert.ok(existsSync(join(target, 'global', 'pg_control')));
    });

    await t.test('run as root into a path not there yet: the warning names the levels restore made above the target', async (t2) => {
      if (process.getuid?.() !== 0) return t2.skip('needs root');
      const top = restoreDir(c, 'deep');
      const target = join(top, 'a', 'b', 'data');
      const r = await restoreWith(a, target, []);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`restore made ${join(top, 'a', 'b')}, ${join(top, 'a')} above it, root's with mode 0700`));
    });

    await t.test('--delta over the stopped original to the end of the archive: after a clean stop nothing is refused; its WAL the archive lacks is refused, named; archived, it is replayed', async () => {
      // A clean stop with archiving working: the segment the shutdown checkpoint began alone is
      // not archived, and holds no transaction.
      await c.start();
      await c.sql(`insert into pitr select g, 'archived' from generate_series(4001, 4100) g`);
      await c.stop();
      const clean = await restoreWith(a, c.dataDir, ['--delta', '--dry-run']);
      assert.equal(clean.code, 0, clean.stderr);
      assert.doesNotMatch(clean.stdout + clean.stderr, /archive does not/);
      // Archiving failing: the WAL of the rows below is only in pg_wal.
      await c.start();
      await c.sql(`alter system set archive_command = 'false'`);
      await c.sql('select pg_reload_conf()');
      await c.sql(`insert into pitr select g, 'unarchived' from generate_series(5001, 5100) g`);
      const tail = await tableChecksum(c);
      await c.stop();
      const r = await restoreWith(a, c.dataDir, ['--delta']);
      assert.equal(r.code, 5, r.stderr);
      const named = /holds WAL the archive does not: ([0-9A-F]{24})(?: to ([0-9A-F]{24}))?[^;]* in ([^ ,;]+)/.exec(r.stderr);
      assert.ok(named, r.stderr);
      assert.match(r.stderr, /recovery to the end of the archive \([0-9A-F]{24}\) would end before it/);
      assert.ok(existsSync(join(c.dataDir, 'global', 'pg_control')), 'nothing written');
      // With a target (here the backup's end) it is said, not refused.
      const dry = await restoreWith(a, c.dataDir, ['--delta', '--target-immediate', '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout + dry.stderr, /warning: WAL the archive does not hold goes with the old cluster: [0-9A-F]{24}/);
      const names = readdirSync(named![3]!).filter((n) => SEGMENT.test(n) && n >= named![1]! && n <= (named![2] ?? named![1]!)).sort();
      for (const n of names) {
        const p = await runPgpitr(['archive-push', ...a.repoArgs, join(named![3]!, n)], c.connectionEnv());
        assert.equal(p.code, 0, p.stderr);
      }
      const again = await restoreWith(a, c.dataDir, ['--delta']);
      assert.equal(again.code, 0, again.stderr);
      const copy = await startRecovered(c.dataDir, version, `wdir-c${version}`);
      try {
        assert.equal(await tableChecksum(copy), tail, copy.logTail());
      } finally {
        await copy.stop();
      }
    });

    await t.test('the root directory is refused', async () => {
      const r = await restoreWith(a, restoreDir(c, 'root'), ['--waldir', '/']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--waldir "\/" is inside the data directory .*or holds it/);
    });
  });
}
