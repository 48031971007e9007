// An archival backup pinned standalone (expire --pin-target=standalone) keeps only
// the WAL from its start to its stop: retention removes the WAL after it, info
// marks that range as left out by expire, check does not fail on it, restore of
// the backup to its end works, and a restore past it is refused before anything
// is written. Unpinned, the next expire removes it and forgets the hole.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';

interface Record {
  id: string;
  start_wal: string;
  stop_wal: string;
}

type Gap = { from: string; to: string; left_by_expire?: boolean };

/** The names of the WAL segments the stanza's archive holds. */
function archivedSegments(repo: string): string[] {
  const dir = join(repo, 'main', 'archive');
  return (readdirSync(dir, { recursive: true }) as string[]).map((p) => /([0-9A-F]{24})-[0-9a-f]{64}/.exec(String(p))?.[1]).filter((n): n is string => n !== undefined).sort();
}

// Retention decides the same on every version: one version proves it.
for (const version of versionsFromEnv().slice(-1)) {
  test(`a standalone pin keeps a backup with its own WAL only (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `pinsa${version}`);
    const { c } = a;
    const env = c.connectionEnv();
    const backup = async () => {
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], env);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Record;
    };
    const writeAndSwitch = async (v: string, switches: number) => {
      await c.sql(`insert into pitr select g, '${v}' from generate_series((select coalesce(max(id), 0) + 1 from pitr), (select coalesce(max(id), 0) + 500 from pitr)) g`);
      for (let i = 0; i < switches; i++) await switchAndWaitArchived(c);
    };
    await c.sql('create table pitr (id int primary key, v text)');
    await writeAndSwitch('zero', 1);
    const archival = await backup();
    const atArchival = await tableChecksum(c);
    await writeAndSwitch('one', 3);
    const middle = await backup();
    await writeAndSwitch('two', 3);
    const newest = await backup();
    await writeAndSwitch('three', 1);

    const usage = await runPgpitr(['expire', ...a.repoArgs, '--pin-target', 'standalone']);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--pin-target goes with --pin=ID/);
    const pin = await runPgpitr(['expire', ...a.repoArgs, '--pin', archival.id, '--pin-target', 'standalone']);
    assert.equal(pin.code, 0, pin.stderr);
    assert.match(pin.stderr, /pinned standalone: expire keeps it with the WAL from its start to its stop/);

    const before = archivedSegments(a.repo);
    const r = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as { keep: { id: string; why: string }[]; expire: { id: string }[]; wal_kept_own_range: { id: string; from: string; to: string }[] };
    assert.deepEqual(d.keep.map((k) => k.id).sort(), [archival.id, newest.id].sort());
    assert.match(d.keep.find((k) => k.id === archival.id)!.why, /pinned standalone/);
    assert.deepEqual(d.expire.map((e) => e.id), [middle.id]);
    assert.deepEqual(d.wal_kept_own_range, [{ id: archival.id, from: archival.start_wal, to: archival.stop_wal }]);
    // Kept: the archival backup's own range, and everything from the newest backup's start on.
    const after = archivedSegments(a.repo);
    assert.deepEqual(after, before.filter((n) => (n >= archival.start_wal && n <= archival.stop_wal) || n >= newest.start_wal));
    assert.ok(after.length < before.filter((n) => n >= archival.start_wal).length, 'the WAL between the backups was removed');
    assert.ok(existsSync(join(a.repo, 'main', 'archive-expired.json')));

    await t.test('info marks the range expire left out; check does not fail on it', async () => {
      const info = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      const s = (JSON.parse(info.stdout) as { stanzas: { backups: { id: string; pin_target: string | null }[]; archive: { timelines: { gaps: Gap[] }[] } }[] }).stanzas[0]!;
      assert.equal(s.backups.find((b) => b.id === archival.id)!.pin_target, 'standalone');
      assert.equal(s.backups.find((b) => b.id === newest.id)!.pin_target, null);
      const gaps = s.archive.timelines[0]!.gaps;
      assert.equal(gaps.length, 1, info.stdout);
      assert.equal(gaps[0]!.left_by_expire, true, info.stdout);
      assert.ok(gaps[0]!.from > archival.stop_wal && gaps[0]!.to < newest.start_wal, info.stdout);
      const text = await runPgpitr(['info', ...a.repoArgs]);
      assert.match(text.stdout, new RegExp(`full backup ${archival.id}: complete \\(pinned standalone`));
      assert.match(text.stdout, /NOT KEPT \(expire, between standalone backups\): \d+ segment\(s\) missing/);
      const check = await runPgpitr(['check', ...a.repoArgs], env);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /archive continuity: no segment missing .*1 range\(s\) left out by expire between standalone backups/);
    });

    await t.test('the archival backup restores to its end; a restore past it is refused before anything is written', async () => {
      const past = join(restoreDir(c, 'pinsa-past'), 'd');
      const refused = await restoreWith(a, past, ['--set', archival.id]);
      assert.equal(refused.code, 6, refused.stderr);
      assert.match(refused.stderr, /missing/);
      assert.match(refused.stderr, new RegExp(`backup ${archival.id} is pinned standalone: when expire has removed the WAL after it \\(pgpitr info says NOT KEPT\\), it restores to its end \\(--target-immediate\\)`));
      assert.equal(existsSync(join(past, 'global')), false);
      const dir = restoreDir(c, 'pinsa');
      const ok = await restoreWith(a, dir, ['--set', archival.id, '--target-immediate', '--target-action', 'promote']);
      assert.equal(ok.code, 0, ok.stderr);
      const copy = await startRecovered(dir, version, `pinsa-copy${version}`);
      try {
        assert.equal(await tableChecksum(copy), atArchival);
      } finally {
        await copy.destroy();
      }
    });

    await t.test('unpinned, the next expire removes it and forgets the hole', async () => {
      const unpin = await runPgpitr(['expire', ...a.repoArgs, '--unpin', archival.id]);
      assert.equal(unpin.code, 0, unpin.stderr);
      assert.match(unpin.stdout + unpin.stderr, /unpinned/);
      // Again: it is not pinned any more, which is said rather than "unpinned".
      const again = await runPgpitr(['expire', ...a.repoArgs, '--unpin', archival.id]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout + again.stderr, /was not pinned: nothing changed/);
      const r2 = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--output', 'json']);
      assert.equal(r2.code, 0, r2.stderr);
      assert.deepEqual((JSON.parse(r2.stdout) as { expire: { id: string }[] }).expire.map((e) => e.id), [archival.id]);
      assert.ok(archivedSegments(a.repo).every((n) => n >= newest.start_wal));
      const holes = JSON.parse(readFileSync(join(a.repo, 'main', 'archive-expired.json'), 'utf8')) as { holes: unknown[] };
      assert.deepEqual(holes.holes, []);
    });
  });
}
