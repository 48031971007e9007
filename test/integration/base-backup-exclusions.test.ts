// excludedEntry / unloggedToSkip / walEmptySubdirectories against the server
// itself: a data directory with one planted entry per rule (an unlogged table,
// temporary relation names, pgsql_tmp, .DS_Store, excluded files, excluded
// directory names nested deep, a stray symlink) is walked with our rules, and
// the result must equal what BASE_BACKUP sends (a plain backup's tree). Then
// isChecksummedFile's version difference, seen in the server's verdict on a
// bad page in a file that is not a relation file.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { lchownSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { compatVersionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv } from '../helpers/pgpitr.js';
import { isRoot, serverUserIds } from '../harness/run.js';
import {
  excludedEntry, isChecksummedFile, isDatabaseDirectory, unloggedToSkip, walEmptySubdirectories,
} from '../../src/postgres/base-backup-exclusions.js';
import type { EntryKind } from '../../src/postgres/base-backup-exclusions.js';

/** Every path (directories end with "/") BASE_BACKUP would send, by our rules. */
function expectedTree(dataDir: string, versionNum: number): Set<string> {
  const out = new Set<string>();
  const walk = (rel: string) => {
    const names = readdirSync(join(dataDir, rel));
    const unlogged = isDatabaseDirectory(rel) ? unloggedToSkip(names, versionNum) : new Set<string>();
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (unlogged.has(name)) continue;
      const st = lstatSync(join(dataDir, path), { throwIfNoEntry: false });
      if (!st) continue;
      const kind: EntryKind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'directory' : 'file';
      const d = excludedEntry(path, kind, versionNum);
      if (d === 'skip') continue;
      if (d === 'empty-directory') {
        out.add(`${path}/`);
        if (path === 'pg_wal') for (const sub of walEmptySubdirectories(versionNum)) out.add(`${sub}/`);
        continue;
      }
      if (kind === 'directory') {
        out.add(`${path}/`);
        walk(path);
      } else out.add(path);
    }
  };
  walk('');
  return out;
}

function actualTree(dir: string): Set<string> {
  const out = new Set<string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (lstatSync(join(dir, path)).isDirectory()) {
        out.add(`${path}/`);
        walk(path);
      } else out.add(path);
    }
  };
  walk('');
  return out;
}

/** lchown a tree to the server user, never following a symlink. */
function giveToServer(path: string): void {
  if (!isRoot()) return;
  const { uid, gid } = serverUserIds();
  lchownSync(path, uid, gid);
  const st = lstatSync(path);
  if (st.isDirectory()) for (const n of readdirSync(path)) giveToServer(join(path, n));
}

// Written by the backup itself, not copied.
const WRITTEN_BY_BACKUP = new Set(['backup_label', 'backup_manifest', 'tablespace_map', 'pgpitr_backup.state']);
// A file that exists in both looks (before and after the backup) must be in
// the backup exactly when our rules keep it; one that comes or goes while the
// server runs (WAL, statistics) proves nothing either way.

for (const version of compatVersionsFromEnv()) {
  test(`our exclusion rules leave out what BASE_BACKUP leaves out (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const pg = await TestCluster.create({ version, name: `excl${version}` });
    const versionNum = Number((await pg.sql<{ v: string }>("select current_setting('server_version_num') as v"))[0]!.v);
    await pg.sql('create unlogged table u (id int primary key)');
    await pg.sql('insert into u select generate_series(1, 1000)');
    await pg.sql('create table p (id int)');
    await pg.sql('insert into p select generate_series(1, 1000)');
    await pg.sql('vacuum u');
    await pg.sql('checkpoint');
    const db = (await pg.sql<{ p: string }>("select pg_relation_filepath('p') as p"))[0]!.p.replace(/\/[0-9]+$/, '');
    const unloggedFile = (await pg.sql<{ p: string }>("select pg_relation_filepath('u') as p"))[0]!.p;

    const d = pg.dataDir;
    const plant = (rel: string, content = 'x') => writeFileSync(join(d, rel), content);
    mkdirSync(join(d, 'extra/deeper/pg_replslot'), { recursive: true });
    plant('extra/deeper/pg_replslot/junk');
    mkdirSync(join(d, `${db}/pg_notify`));
    plant(`${db}/pg_notify/junk`);
    plant('pg_notify/junk');
    plant('pg_serial/junk');
    plant('pg_snapshots/junk');
    plant('pg_dynshmem/junk');
    mkdirSync(join(d, 'base/pgsql_tmp'), { recursive: true });
    plant('base/pgsql_tmp/pgsql_tmp1.0');
    plant(`${db}/pgsql_tmp_stray`);
    plant(`${db}/t3_99999`);
    plant(`${db}/t3_99999_fsm`);
    plant(`${db}/t3_99999.1`);
    plant('.DS_Store');
    // 13-14 would verify checksums in it and fail the backup ("invalid segment number 0").
    if (versionNum >= 150000) plant(`${db}/.DS_Store`);
    plant('pg_wal/planted_junk'); // not WAL-named: the server never removes it
    plant('backup_manifest', '{}');
    plant('current_logfiles.tmp');
    plant('postgresql.auto.conf.tmp');
    plant('global/pg_internal.init.4242');
    plant('extra/postmaster.opts');
    plant('extra/keep.me');
    // Dangling on purpose: the server must not follow it, and neither may anything here.
    symlinkSync('no-such-target', join(d, 'stray_link'));
    giveToServer(d);

    const before = expectedTree(d, versionNum);
    const target = join(pg.tempDir('backups'), 'b');
    const r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-Xnone', '-c', 'fast'], clusterEnv(pg));
    assert.equal(r.code, 0, r.stderr);
    const after = expectedTree(d, versionNum);
    const actual = actualTree(target);

    // Sanity: the rules under test were exercised.
    assert.ok(!before.has(unloggedFile) && before.has(`${unloggedFile}_init`), 'unlogged main fork left out, init fork kept');
    assert.ok(before.has('extra/deeper/pg_replslot/') && !before.has('extra/deeper/pg_replslot/junk'));
    assert.equal(before.has('.DS_Store'), versionNum < 150000);

    const settled = (p: string) => !WRITTEN_BY_BACKUP.has(p);
    const missing = [...before].filter((p) => after.has(p) && settled(p) && !actual.has(p));
    const extra = [...actual].filter((p) => !before.has(p) && !after.has(p) && settled(p));
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
    for (const p of ['pg_wal/', ...walEmptySubdirectories(versionNum).map((s) => `${s}/`), 'pg_notify/', `${db}/pg_notify/`]) {
      assert.ok(actual.has(p), `${p} sent`);
    }

    // Checksum verification's reach differs: a bad page in a file that is not
    // a relation file fails a 13-16 backup and passes 17-18 unverified.
    const stray = `${db}/stray_page`;
    const page = Buffer.alloc(8192);
    page.writeUInt16LE(0x1000, 14); // pd_upper: an initialised page, pd_lsn 0, pd_checksum 0 (never valid)
    writeFileSync(join(d, stray), page);
    giveToServer(join(d, stray));
    const r2 = await runPgpitr(['basebackup', '-D', join(pg.tempDir('backups'), 'b2'), '-Fp', '-Xnone', '-c', 'fast'], clusterEnv(pg));
    if (isChecksummedFile(stray, versionNum)) {
      assert.notEqual(r2.code, 0, 'the backup verified the page');
      assert.match(r2.stderr, /checksum verification failed in file "\.\/base\/[0-9]+\/stray_page", block 0/);
    } else {
      assert.equal(r2.code, 0, r2.stderr);
      assert.doesNotMatch(r2.stderr, /checksum/);
    }
    assert.equal(isChecksummedFile(stray, versionNum), versionNum < 170000);
  });
}
