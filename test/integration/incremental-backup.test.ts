// Differential and incremental repository backups (backup --type diff|incr) on
// real servers: a chain full, incr, diff, incr, taken alternately by one
// BASE_BACKUP stream and by -j 2 readers (direct read method), each one
// comparing with the right prior backup, storing only what changed and naming
// the backup that holds the rest. Every backup restores, by itself and its
// references, to exactly the data of its moment (PostgreSQL's pg_verifybackup,
// or our manifest check, on the restored copy first). info lists the types,
// verify passes; retention counts full backups, a full backup's diffs and incrs
// go with it, and what a kept (pinned) incr needs is kept with it. An incr on an
// empty stanza is a full backup, and says so; an unknown --type is a usage
// error. A referenced object deleted from the older set: verify names it, and
// a restore of the incr fails before the copy could be started. A backup whose
// record is gone (an interrupted expire) or not complete: restore without --set
// passes over the incr that takes files from it, saying so, and restores an older
// one; with --set, the incr is refused by name before anything is written.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import type { TestCluster } from '../harness/cluster.js';
import { tableChecksums } from '../harness/data.js';
import { clientToolDir, versionsFromEnv } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { checkManifest } from '../helpers/manifest-check.js';
import { archivingCluster, restoreDir, restoreWith, serverManifest, startRecovered, switchAndWaitArchived } from '../helpers/pitr.js';
import type { ArchivingCluster } from '../helpers/pitr.js';

interface Record {
  id: string;
  type: 'full' | 'diff' | 'incr';
  prior: string | null;
  references: string[];
  server_start_time: string | null;
  state: string;
  size: number;
  stored_size: number;
  file_count: number;
}

interface ManifestEntry {
  path: string;
  size: number;
  mtime: number;
  reference?: string;
  stored: { object: string } | { bundle: number; offset: number; length: number };
}

interface Taken {
  record: Record;
  stderr: string;
  /** tableChecksums of the source just before the backup: what a restore of it must give. */
  data: { [table: string]: string };
  /** The backup's own report of what it took from its prior backup (incr and diff only). */
  unchanged?: { files: number; bytes: number; stored: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function backupRoot(a: ArchivingCluster): string {
  return join(a.repo, 'main', 'backup');
}

function setsOnDisk(a: ArchivingCluster): string[] {
  return existsSync(backupRoot(a)) ? readdirSync(backupRoot(a)).sort() : [];
}

function readManifest(a: ArchivingCluster, id: string): { format_version: number; compression: string; files: ManifestEntry[] } {
  return JSON.parse(readFileSync(join(backupRoot(a), id, 'manifest.json'), 'utf8'));
}

/** Where a manifest entry's stored bytes are on disk (the set it names, or its own). */
function storedPathOf(a: ArchivingCluster, id: string, compression: string, f: ManifestEntry): string {
  const set = join(backupRoot(a), f.reference ?? id);
  const ext = compression === 'none' ? '' : `.${({ zstd: 'zst', gzip: 'gz' } as { [k: string]: string })[compression] ?? compression}`;
  return 'object' in f.stored ? join(set, f.stored.object) : join(set, 'bundle', `${f.stored.bundle}${ext}`);
}

/**
 * A restored directory, before it is started, against the server's own manifest of that backup:
 * PostgreSQL 15's pg_verifybackup where it can read the manifest (-n: the WAL comes from the
 * archive), our manifest check otherwise (PostgreSQL 17+ write version 2).
 */
async function verifyRestored(a: ArchivingCluster, version: number, id: string, dir: string, c: TestCluster, name: string): Promise<void> {
  if (version === 15) {
    const manifest = join(restoreDir(c, `${name}-manifest`), 'backup_manifest');
    await serverManifest(a, id, manifest);
    const v = await runCommand(join(clientToolDir(), 'pg_verifybackup'), ['-n', '-m', manifest, '-i', 'postgresql.auto.conf', '-i', 'recovery.signal', dir]);
    assert.equal(v.code, 0, `pg_verifybackup of the restored ${id}: ${v.stdout}${v.stderr}`);
  } else {
    const manifest = join(dir, 'backup_manifest');
    await serverManifest(a, id, manifest);
    try {
      await checkManifest(dir, ['postgresql.auto.conf', 'recovery.signal']);
    } finally {
      rmSync(manifest, { force: true });
    }
  }
}

// One version proves it (the file-level comparison is pgpitr's own, the same on every server; restore of
// each server version is the PITR matrix's), and keeps CI within its time (85 s a version).
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`differential and incremental backups: chain, restore, verify, retention, damage (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const t0 = Date.now();
    const step = (what: string) => t.diagnostic(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const a = await archivingCluster(version, `incr${version}`);
    const { c } = a;
    const env = c.connectionEnv();

    // t_still is never written after this: frozen (no hint bit or visibility map write later), no
    // autovacuum, and checkpointed well before the first backup starts, so that every later backup
    // finds its files older than its prior backup's start and takes them from that backup.
    await c.sql('create table t_changed (id int primary key, v text) with (autovacuum_enabled = off)');
    await c.sql(`insert into t_changed select g, md5(g::text) from generate_series(1, 5000) g`);
    await c.sql('create table t_still (id int primary key, v text) with (autovacuum_enabled = off)');
    await c.sql(`insert into t_still select g, md5(g::text) || md5((-g)::text) from generate_series(1, 60000) g`);
    await c.sql('vacuum (freeze, analyze) t_still');
    await c.sql('vacuum (freeze, analyze) t_changed');
    await c.sql('checkpoint');
    const stillPath = (await c.sql<{ p: string }>(`select pg_relation_filepath('t_still') as p`))[0]!.p;
    await sleep(3000);
    step('cluster ready');

    const backup = async (type: string, jobs: boolean, opts: { expectPrior?: string } = {}): Promise<Taken> => {
      const data = await tableChecksums(c);
      const args = ['backup', ...a.repoArgs, '--start-fast', '--output', 'json', '-v', '--type', type, ...(jobs ? ['-j', '2', '--read-method', 'direct'] : [])];
      const r = await runPgpitr(args, env);
      assert.equal(r.code, 0, `backup --type ${type}${jobs ? ' -j 2' : ''}: ${r.stderr}`);
      const record = JSON.parse(r.stdout) as Record;
      assert.equal(record.state, 'complete');
      const taken: Taken = { record, stderr: r.stderr, data };
      if (opts.expectPrior) {
        const m = new RegExp(`${type} backup ${record.id}: (\\d+) unchanged files \\((\\d+) bytes\\) taken from backup ${opts.expectPrior}, (\\d+) stored`).exec(r.stderr);
        assert.ok(m, `no "unchanged files" line for ${record.id}:\n${r.stderr}`);
        taken.unchanged = { files: Number(m[1]), bytes: Number(m[2]), stored: Number(m[3]) };
      }
      step(`${record.type} backup ${record.id}${jobs ? ' (-j 2)' : ''}: ${record.stored_size} of ${record.size} bytes stored${taken.unchanged ? `, ${taken.unchanged.files} files unchanged, ${taken.unchanged.stored} stored, references ${JSON.stringify(record.references)}` : ''}`);
      return taken;
    };

    await t.test('--type bogus is a usage error (exit 2), before anything is written', async () => {
      const before = setsOnDisk(a);
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--type', 'bogus'], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /invalid --type "bogus"/);
      assert.match(r.stderr, /full, diff or incr/);
      assert.deepEqual(setsOnDisk(a), before);
    });

    // 1. The first backup of the stanza, asked for as an incr: there is nothing to build on.
    const f1 = await backup('incr', false);
    await t.test('an incr on an empty stanza is taken as a full backup, and says so', () => {
      assert.equal(f1.record.type, 'full');
      assert.match(f1.record.id, /^\d{8}-\d{6}F$/);
      assert.equal(f1.record.prior, null);
      assert.deepEqual(f1.record.references ?? [], []);
      assert.ok(f1.record.server_start_time, 'a full backup records the server start time');
      assert.match(f1.stderr, /warning: no backup to take an incr backup from: .*; taking a full backup/);
      const m = readManifest(a, f1.record.id);
      assert.equal(m.files.filter((f) => f.reference !== undefined).length, 0);
    });

    // 2. Changes, then an incr (-j 2): t_changed written, t_still untouched, t_new1 created.
    await sleep(2500);
    await c.sql(`insert into t_changed select g, md5(g::text) from generate_series(5001, 6000) g`);
    await c.sql(`create table t_new1 as select g as id, md5(g::text) as v from generate_series(1, 2000) g`);
    const i1 = await backup('incr', true, { expectPrior: f1.record.id });

    // 3. More changes (checkpointed a while before the backup), then a diff (one stream).
    await sleep(2500);
    await c.sql(`update t_changed set v = 'diff' where id % 10 = 0`);
    await c.sql(`insert into t_new1 select g, md5(g::text) from generate_series(2001, 2500) g`);
    await c.sql(`create table t_new2 as select g as id, repeat(md5(g::text), 4) as v from generate_series(1, 3000) g`);
    await tableChecksums(c); // sets the hint bits now, so that the checkpoint writes them before the diff
    await c.sql('checkpoint');
    await sleep(2500);
    const d1 = await backup('diff', false, { expectPrior: f1.record.id });

    // 4. More changes, then an incr (-j 2) built on the diff.
    await sleep(2500);
    await c.sql(`delete from t_changed where id % 7 = 0`);
    await c.sql(`drop table t_new1`);
    await c.sql(`insert into t_changed select g, 'incr2' from generate_series(7001, 7500) g`);
    const i2 = await backup('incr', true, { expectPrior: d1.record.id });

    await t.test('each backup compares with the right prior backup and stores only what changed', () => {
      const full = f1.record;
      for (const [taken, type, letter, prior] of [
        [i1, 'incr', 'I', full.id],
        [d1, 'diff', 'D', full.id],
        [i2, 'incr', 'I', d1.record.id],
      ] as const) {
        const r = taken.record;
        assert.equal(r.type, type, r.id);
        assert.match(r.id, new RegExp(`^\\d{8}-\\d{6}${letter}$`));
        assert.equal(r.prior, prior, r.id);
        assert.ok(r.server_start_time, r.id);
        assert.ok(Array.isArray(r.references) && r.references.length > 0, `${r.id} references ${JSON.stringify(r.references)}`);
        const earlier = [full.id, i1.record.id, d1.record.id, i2.record.id].slice(0, [full.id, i1.record.id, d1.record.id, i2.record.id].indexOf(r.id));
        for (const ref of r.references) assert.ok(earlier.includes(ref), `${r.id} references ${ref}, not an earlier backup (${earlier.join(', ')})`);
        // t_still has not changed since the full backup: every one takes it, from the full backup
        assert.ok(r.references.includes(full.id), `${r.id} references ${JSON.stringify(r.references)}`);
        assert.ok(taken.unchanged!.files > 0, `${r.id}: no unchanged file`);
        assert.ok(taken.unchanged!.stored > 0, `${r.id}: nothing stored`);
        assert.equal(taken.unchanged!.files + taken.unchanged!.stored, r.file_count, r.id);
        assert.ok(r.stored_size < full.stored_size / 2, `${r.id} stored ${r.stored_size} bytes, the full backup ${full.stored_size}`);
        // and its size is still that of the whole cluster (what a restore writes)
        assert.ok(r.size > full.size / 2, `${r.id}: size ${r.size}, the full backup's ${full.size}`);
      }
      assert.deepEqual(i1.record.references, [full.id]);
      assert.deepEqual(d1.record.references, [full.id]);
      // every entry with a reference names the set that holds its bytes (for a file unchanged since
      // the full backup: the full backup, never the diff or incr in between), and the object is there
      for (const r of [i1, d1, i2]) {
        const m = readManifest(a, r.record.id);
        assert.equal(m.format_version, 4);
        const refs = new Set<string>();
        for (const f of m.files) {
          if (f.reference === undefined) continue;
          refs.add(f.reference);
          assert.notEqual(f.reference, r.record.id);
          const held = readManifest(a, f.reference).files.find((x) => x.path === f.path);
          assert.ok(held && held.reference === undefined, `${r.record.id}: ${f.path} names ${f.reference}, whose set does not hold it`);
          assert.deepEqual(held.stored, f.stored, `${r.record.id}: ${f.path}`);
          assert.ok(existsSync(storedPathOf(a, r.record.id, m.compression, f)), `${r.record.id}: ${f.path}: ${storedPathOf(a, r.record.id, m.compression, f)}`);
        }
        assert.deepEqual([...refs].sort(), [...r.record.references].sort(), `${r.record.id}: manifest references and record`);
        const still = m.files.filter((f) => f.path === stillPath || f.path.startsWith(`${stillPath}.`) || f.path.startsWith(`${stillPath}_`));
        assert.ok(still.length > 0 && still.every((f) => f.reference === f1.record.id), `${r.record.id}: t_still's files ${JSON.stringify(still.map((f) => [f.path, f.reference]))}`);
      }
    });

    await switchAndWaitArchived(c);

    await t.test('every backup of the chain restores to its own moment', async () => {
      for (const [name, taken] of [['full', f1], ['incr1', i1], ['diff', d1], ['incr2', i2]] as const) {
        const dir = restoreDir(c, `restore-${name}`);
        const r = await restoreWith(a, dir, ['--set', taken.record.id, '--target-immediate', '--target-action', 'promote']);
        assert.equal(r.code, 0, `restore of ${taken.record.id}: ${r.stderr}`);
        await verifyRestored(a, version, taken.record.id, dir, c, name);
        const copy = await startRecovered(dir, version, `incr${name}${version}`);
        try {
          assert.deepEqual(await tableChecksums(copy), taken.data, `${name} ${taken.record.id}\n${copy.logTail()}`);
        } finally {
          await copy.destroy();
        }
        step(`restored ${name} ${taken.record.id}`);
      }
    });

    await t.test('without --set, an incr taking files from a backup no longer complete is passed over for an older one; with --set it is refused by name', async () => {
      // i2 takes files from the diff (t_new2 and catalog files written before it and not since): with
      // the diff gone, i2 cannot be restored, and i1 (from f1 only) is the newest backup that can.
      assert.ok(i2.record.references.includes(d1.record.id), `${i2.record.id} references ${JSON.stringify(i2.record.references)}`);
      const recordFile = join(backupRoot(a), d1.record.id, 'backup.json');
      const saved = readFileSync(recordFile);
      const passedOver = (id: string, lost: string) => new RegExp(`pgpitr: backup ${id} is passed over: it takes files from backup ${lost}, which is not a complete backup\n`);
      const chose = (id: string) => new RegExp(`pgpitr: backup ${id} \\(PostgreSQL \\d+, timeline 1, [0-9A-F]+/[0-9A-F]+ to [0-9A-F]+/[0-9A-F]+\\): newest backup; recovery stops when it is consistent\n`);
      const f1Record = join(backupRoot(a), f1.record.id, 'backup.json');
      const savedF1 = readFileSync(f1Record);
      try {
        // 1. The diff's record gone, its set left (an expire interrupted after the record went).
        rmSync(recordFile);
        const dir = restoreDir(c, 'restore-passed-over');
        const r = await restoreWith(a, dir, ['--target-immediate', '--target-action', 'promote']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, passedOver(i2.record.id, d1.record.id), r.stderr);
        assert.match(r.stderr, chose(i1.record.id), r.stderr);
        assert.ok(r.stderr.indexOf(`backup ${i2.record.id} is passed over`) < r.stderr.indexOf(`backup ${i1.record.id} (PostgreSQL`), r.stderr);
        assert.match(r.stderr, new RegExp(`backup ${i1.record.id} takes \\d+ unchanged files from backup\\(s\\) ${f1.record.id}\n`), r.stderr);
        // only i2 is passed over: i1 and f1 take nothing from the diff, and the diff is no backup now
        assert.equal(r.stderr.match(/is passed over/g)?.length, 1, r.stderr);
        const copy = await startRecovered(dir, version, `incrpassed${version}`);
        try {
          assert.deepEqual(await tableChecksums(copy), i1.data, `restored without --set, expected ${i1.record.id}\n${copy.logTail()}`);
        } finally {
          await copy.destroy();
        }
        step(`restored ${i1.record.id} without --set, ${i2.record.id} passed over`);

        // With --set, the incr is refused by name (exit 6, not found), before anything is written.
        const refusedDir = restoreDir(c, 'restore-refused');
        const refused = await restoreWith(a, refusedDir, ['--set', i2.record.id, '--target-immediate', '--target-action', 'promote']);
        assert.equal(refused.code, 6, refused.stderr);
        assert.match(refused.stderr, new RegExp(`error: backup ${i2.record.id} takes files from backup ${d1.record.id}, which is not a complete backup of stanza main`), refused.stderr);
        assert.doesNotMatch(refused.stderr, /is passed over/, refused.stderr);
        assert.deepEqual(readdirSync(refusedDir), [], 'a refused restore wrote into the data directory');

        // 2. The diff's record there, but not complete (failed): the same choice (a dry run).
        writeFileSync(recordFile, JSON.stringify({ ...(JSON.parse(saved.toString()) as Record), state: 'failed' }, null, 1) + '\n');
        const dryDir = restoreDir(c, 'restore-passed-over-dry');
        const dry = await restoreWith(a, dryDir, ['--target-immediate', '--dry-run']);
        assert.equal(dry.code, 0, dry.stderr);
        assert.match(dry.stderr, passedOver(i2.record.id, d1.record.id), dry.stderr);
        assert.match(dry.stderr, chose(i1.record.id), dry.stderr);
        assert.deepEqual(readdirSync(dryDir), []);

        // 3. The diff complete again, the full backup's record gone: every other backup takes files
        // from it, none can be restored, and restore says so of each rather than restore one of them.
        writeFileSync(recordFile, saved);
        rmSync(f1Record);
        const none = await restoreWith(a, dryDir, ['--target-immediate', '--dry-run']);
        assert.equal(none.code, 6, none.stderr);
        for (const x of [i1, d1, i2]) assert.match(none.stderr, passedOver(x.record.id, f1.record.id), none.stderr);
        assert.match(none.stderr, /error: no backup of stanza main can be restored: every complete one takes files from a backup that is no longer complete/, none.stderr);
        assert.deepEqual(readdirSync(dryDir), []);
        t.diagnostic(`nothing restorable: ${none.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      } finally {
        writeFileSync(recordFile, saved);
        writeFileSync(f1Record, savedF1);
      }
    });

    // 5. A second full backup (-j 2), changes, and an incr built on it (one stream).
    await sleep(2500);
    await c.sql(`insert into t_changed select g, 'full2' from generate_series(8001, 8200) g`);
    const f2 = await backup('full', true);
    await sleep(2500);
    await c.sql(`update t_changed set v = 'incr3' where id % 3 = 0`);
    const i3 = await backup('incr', false, { expectPrior: f2.record.id });
    await switchAndWaitArchived(c);
    const chain = [f1, i1, d1, i2, f2, i3].map((x) => x.record.id);

    await t.test('the second full backup and its incr', () => {
      assert.equal(f2.record.type, 'full');
      assert.match(f2.record.id, /F$/);
      assert.equal(f2.record.prior, null);
      assert.deepEqual(f2.record.references ?? [], []);
      assert.doesNotMatch(f2.stderr, /unchanged files/);
      assert.equal(i3.record.type, 'incr');
      assert.equal(i3.record.prior, f2.record.id);
      assert.deepEqual(i3.record.references, [f2.record.id]);
      assert.ok(i3.unchanged!.files > 0);
      assert.ok(i3.record.stored_size < f2.record.stored_size / 2, `${i3.record.stored_size} of ${f2.record.stored_size}`);
    });

    await t.test('info lists each backup with its type', async () => {
      const info = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      const backups = (JSON.parse(info.stdout) as { stanzas: { backups: { id: string; type: string; state: string; prior: string | null; references: string[] }[] }[] }).stanzas[0]!.backups;
      assert.deepEqual(backups.map((b) => b.prior), [null, f1.record.id, f1.record.id, d1.record.id, null, f2.record.id]);
      assert.deepEqual(backups.find((b) => b.id === i3.record.id)!.references, [f2.record.id]);
      assert.deepEqual(
        backups.map((b) => [b.id, b.type, b.state]),
        [f1, i1, d1, i2, f2, i3].map((x) => [x.record.id, x.record.type, 'complete']),
      );
      assert.deepEqual(backups.map((b) => b.type), ['full', 'incr', 'diff', 'incr', 'full', 'incr']);
      const text = await runPgpitr(['info', ...a.repoArgs]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`incr backup ${i3.record.id}: complete[^]*from backup ${f2.record.id}; unchanged files in ${f2.record.id}`));
    });

    await t.test('verify passes on the whole stanza, and on one incr (its referenced files included)', async () => {
      const v = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      // Verified alone, the incr reads every file it restores: its own and those of the sets it names.
      const one = await runPgpitr(['verify', ...a.repoArgs, '--set', i2.record.id]);
      assert.equal(one.code, 0, one.stdout + one.stderr);
      assert.match(one.stdout + one.stderr, new RegExp(`backup ${i2.record.id}: ${i2.record.file_count} files, ${i2.record.size} bytes read`), one.stdout + one.stderr);
    });

    await t.test('retention: a pinned incr keeps what it needs; retention-full 1 removes the old full with its diff and incrs', async () => {
      const pin = await runPgpitr(['expire', ...a.repoArgs, '--pin', i2.record.id]);
      assert.equal(pin.code, 0, pin.stderr);
      const dry = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--dry-run', '--output', 'json']);
      assert.equal(dry.code, 0, dry.stderr);
      const d = JSON.parse(dry.stdout) as { keep: { id: string; why: string }[]; expire: { id: string; why: string }[] };
      // i2 is pinned; it takes files from f1 (and maybe d1) and was compared with d1: all three stay
      assert.deepEqual(d.keep.map((k) => k.id).sort(), [f1.record.id, d1.record.id, i2.record.id, f2.record.id, i3.record.id].sort(), dry.stdout);
      assert.deepEqual(d.expire.map((e) => e.id), [i1.record.id], dry.stdout);
      assert.deepEqual(setsOnDisk(a), [...chain].sort(), 'a dry run removes nothing');
      // expire --set: one backup and what takes files from it, whatever the policy; a pinned one stops it.
      const refused = await runPgpitr(['expire', ...a.repoArgs, '--set', d1.record.id]);
      assert.equal(refused.code, 5, refused.stderr);
      assert.match(refused.stderr, new RegExp(`backup ${i2.record.id} is pinned \\(it takes files from backup ${d1.record.id}`));
      // A trial unpin is refused, not carried out: the backup stays pinned and --set stays refused.
      const tryUnpin = await runPgpitr(['expire', ...a.repoArgs, '--unpin', i2.record.id, '--dry-run']);
      assert.equal(tryUnpin.code, 2, tryUnpin.stdout + tryUnpin.stderr);
      assert.match(tryUnpin.stderr, /--unpin cannot be given with --dry-run/);
      assert.equal((await runPgpitr(['expire', ...a.repoArgs, '--set', d1.record.id])).code, 5, 'still pinned');
      const unpin = await runPgpitr(['expire', ...a.repoArgs, '--unpin', i2.record.id]);
      assert.equal(unpin.code, 0, unpin.stderr);
      const set = await runPgpitr(['expire', ...a.repoArgs, '--set', d1.record.id, '--dry-run', '--output', 'json']);
      assert.equal(set.code, 0, set.stderr);
      assert.deepEqual((JSON.parse(set.stdout) as { expire: { id: string }[] }).expire.map((e) => e.id).sort(), [d1.record.id, i2.record.id].sort(), set.stdout);
      assert.deepEqual(setsOnDisk(a), [...chain].sort(), 'a dry run removes nothing');

      const r = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const e = JSON.parse(r.stdout) as { keep: { id: string }[]; expire: { id: string }[] };
      assert.deepEqual(e.keep.map((k) => k.id).sort(), [f2.record.id, i3.record.id].sort(), r.stdout);
      assert.deepEqual(e.expire.map((x) => x.id).sort(), [f1.record.id, i1.record.id, d1.record.id, i2.record.id].sort(), r.stdout);
      assert.deepEqual(setsOnDisk(a), [f2.record.id, i3.record.id].sort());
      const info = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      const left = (JSON.parse(info.stdout) as { stanzas: { backups: { id: string; type: string }[] }[] }).stanzas[0]!.backups;
      assert.deepEqual(left.map((b) => [b.id, b.type]), [[f2.record.id, 'full'], [i3.record.id, 'incr']]);
      const v = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    });

    await t.test('the kept incr restores after the expire, from its full backup\'s set; an incr of the restored copy is full', async () => {
      const dir = restoreDir(c, 'restore-incr3');
      const restoredAt = Math.floor(Date.now() / 1000);
      const r = await restoreWith(a, dir, ['--set', i3.record.id, '--target-immediate', '--target-action', 'promote']);
      assert.equal(r.code, 0, r.stderr);
      // No recorded time is given back: every file restored has the restore's (a later incr, which
      // trusts times, then copies it; a standby rebuilt from another server's backup could match
      // the prior's size and time for other bytes).
      for (const f of readManifest(a, i3.record.id).files) {
        if (f.path === 'postgresql.auto.conf' || f.path === 'global/pg_control') continue;
        const at = Math.floor(statSync(join(dir, f.path)).mtimeMs / 1000);
        assert.ok(at >= restoredAt, `${f.path}: recorded ${f.mtime}, restored with ${at}`);
      }
      await verifyRestored(a, version, i3.record.id, dir, c, 'incr3');
      const copy = await startRecovered(dir, version, `incr3${version}`);
      try {
        assert.deepEqual(await tableChecksums(copy), i3.data, copy.logTail());
        // The copy was promoted to a new timeline: its files are another history's (with the times the
        // restore gave them), so an incr of it compares with nothing and is taken full, saying why.
        const again = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json', '--type', 'incr', '--wal', 'included'], copy.connectionEnv());
        assert.equal(again.code, 0, again.stderr);
        assert.equal((JSON.parse(again.stdout) as Record).type, 'full');
        assert.match(again.stderr, new RegExp(`no backup to take an incr backup from: the newest complete backup, ${i3.record.id}, was taken on timeline 1, the server is on timeline 2`), again.stderr);
      } finally {
        await copy.destroy();
      }
      step(`restored incr ${i3.record.id}`);
    });

    await t.test('a referenced object missing from the full backup\'s set: verify names it, restore of the incr fails', async () => {
      const m = readManifest(a, i3.record.id);
      const victim = m.files.filter((f) => f.reference === f2.record.id && 'object' in f.stored).sort((x, y) => y.size - x.size)[0];
      assert.ok(victim, `no stored object of ${f2.record.id} that ${i3.record.id} references`);
      const object = (victim.stored as { object: string }).object;
      const onDisk = join(backupRoot(a), f2.record.id, object);
      assert.ok(existsSync(onDisk), onDisk);
      rmSync(onDisk);
      const objectRe = `${f2.record.id}/${object.replace(/[.]/g, '\\.')}`;

      // The whole stanza: a file stored in a set that is verified in the same run is read once, there,
      // and the problem is reported for the incr that takes the file from it too.
      const bad = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(bad.code, 7, bad.stdout + bad.stderr);
      assert.match(bad.stderr, new RegExp(`PROBLEM ${f2.record.id}: .*${objectRe}.* of "${victim.path}" is missing`), bad.stderr);
      assert.match(bad.stderr, new RegExp(`PROBLEM ${i3.record.id}: .*${objectRe}.* of "${victim.path}" is missing`), bad.stderr);
      // The incr alone: its referenced files are read from the full backup's set.
      const one = await runPgpitr(['verify', ...a.repoArgs, '--set', i3.record.id]);
      assert.equal(one.code, 7, one.stdout + one.stderr);
      assert.match(one.stderr, new RegExp(`PROBLEM ${i3.record.id}: .*${objectRe}.* of "${victim.path}" is missing`), one.stderr);
      assert.doesNotMatch(one.stderr, new RegExp(`PROBLEM ${f2.record.id}`), one.stderr);

      const dir = restoreDir(c, 'restore-damaged');
      const r = await restoreWith(a, dir, ['--set', i3.record.id, '--target-immediate', '--target-action', 'promote']);
      // 5, as for a damaged stored file (repository.test.ts): the repository cannot give the file back
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, new RegExp(objectRe), r.stderr);
      assert.match(r.stderr, new RegExp(`"${victim.path.replace(/[.]/g, '\\.')}"`), r.stderr);
      assert.match(r.stderr, /missing/, r.stderr);
      assert.equal(existsSync(join(dir, 'global', 'pg_control')), false, 'a failed restore left a startable copy');
      t.diagnostic(`restore of the damaged incr: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    });
  });
}
