// BASE_BACKUP's exclusion rules for 13-18, one test per rule and per version
// difference (read from basebackup.c of 13, 16 and 18 and checked against the
// strings in the 13.23-18.4 server binaries).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import {
  CONTROL_FILE, excludedEntry, isChecksummedFile, isDatabaseDirectory, unloggedToSkip, walEmptySubdirectories,
} from '../../src/postgres/base-backup-exclusions.js';
import { isTemporaryRelationFileName, parseRelationFileName } from '../../src/postgres/relation-file-name.js';

const ALL = [130023, 140023, 150018, 160014, 170010, 180004];
const TS = 'pg_tblspc/16400/PG_15_202209061';

test('directories sent empty, at every level, also when they are symlinks', () => {
  for (const v of ALL) {
    for (const d of ['pg_stat_tmp', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans']) {
      assert.equal(excludedEntry(d, 'directory', v), 'empty-directory', `${d} ${v}`);
      assert.equal(excludedEntry(d, 'link', v), 'empty-directory', `${d} link ${v}`);
      // The server matches the name, not the path.
      assert.equal(excludedEntry(`base/5/${d}`, 'directory', v), 'empty-directory');
      // A regular file of that name: the server would write a broken member; we leave it out.
      assert.equal(excludedEntry(d, 'file', v), 'skip');
    }
    // Directories kept whole.
    for (const d of ['pg_xact', 'pg_multixact', 'pg_commit_ts', 'pg_twophase', 'pg_logical', 'pg_stat', 'global', 'base', 'base/5', 'pg_tblspc']) {
      assert.equal(excludedEntry(d, 'directory', v), 'include', `${d} ${v}`);
    }
  }
});

test('pg_wal: top level only, sent empty, with archive_status (and summaries from 17)', () => {
  for (const v of ALL) {
    assert.equal(excludedEntry('pg_wal', 'directory', v), 'empty-directory');
    assert.equal(excludedEntry('pg_wal', 'link', v), 'empty-directory');
    assert.equal(excludedEntry('base/pg_wal', 'directory', v), 'include');
  }
  assert.deepEqual(walEmptySubdirectories(130023), ['pg_wal/archive_status']);
  assert.deepEqual(walEmptySubdirectories(160014), ['pg_wal/archive_status']);
  assert.deepEqual(walEmptySubdirectories(170010), ['pg_wal/archive_status', 'pg_wal/summaries']);
  assert.deepEqual(walEmptySubdirectories(180004), ['pg_wal/archive_status', 'pg_wal/summaries']);
});

test('stats_temp_directory (13-14 only) is sent empty; 15+ has no such setting', () => {
  for (const v of [130023, 140023]) {
    assert.equal(excludedEntry('stats', 'directory', v, { statsTempDirectory: 'stats' }), 'empty-directory');
    assert.equal(excludedEntry('stats', 'directory', v, { statsTempDirectory: './stats' }), 'empty-directory');
    assert.equal(excludedEntry('x/stats', 'directory', v, { statsTempDirectory: 'x/stats' }), 'empty-directory');
    assert.equal(
      excludedEntry('stats', 'directory', v, { statsTempDirectory: '/data/pg/stats', dataDirectory: '/data/pg' }),
      'empty-directory',
    );
    // Outside the data directory (e.g. a RAM disk): nothing in PGDATA matches.
    assert.equal(excludedEntry('stats', 'directory', v, { statsTempDirectory: '/run/pgstat', dataDirectory: '/data/pg' }), 'include');
    assert.equal(excludedEntry('stats', 'directory', v), 'include');
  }
  assert.equal(excludedEntry('stats', 'directory', 150018, { statsTempDirectory: 'stats' }), 'include');
  // The default, pg_stat_tmp, is excluded by name in every version.
  assert.equal(excludedEntry('pg_stat_tmp', 'directory', 180004), 'empty-directory');
});

test('excluded files, matched by name at every level', () => {
  for (const v of ALL) {
    for (const f of ['postmaster.pid', 'postmaster.opts', 'backup_label', 'tablespace_map', 'backup_manifest',
      'postgresql.auto.conf.tmp', 'current_logfiles.tmp', 'pg_internal.init']) {
      assert.equal(excludedEntry(f, 'file', v), 'skip', `${f} ${v}`);
      assert.equal(excludedEntry(`base/1/${f}`, 'file', v), 'skip');
    }
    // pg_internal.init is a prefix: its temporary files too.
    assert.equal(excludedEntry('global/pg_internal.init.1234', 'file', v), 'skip');
    assert.equal(excludedEntry('base/16384/pg_internal.init', 'file', v), 'skip');
    // Exact names are exact.
    for (const f of ['postmaster.pid.bak', 'backup_label.old', 'postgresql.auto.conf', 'current_logfiles', 'tablespace_map.old',
      'postgresql.conf', 'pg_hba.conf', 'PG_VERSION', 'pg_ident.conf']) {
      assert.equal(excludedEntry(f, 'file', v), 'include', `${f} ${v}`);
    }
    assert.equal(excludedEntry(CONTROL_FILE, 'file', v), 'include');
  }
});

test('temporary files and directories (pgsql_tmp prefix) at every level', () => {
  for (const v of ALL) {
    assert.equal(excludedEntry('base/pgsql_tmp', 'directory', v), 'skip');
    assert.equal(excludedEntry('base/pgsql_tmp/pgsql_tmp123.0', 'file', v), 'skip');
    assert.equal(excludedEntry(`${TS}/pgsql_tmp`, 'directory', v), 'skip');
    assert.equal(excludedEntry('pgsql_tmp_anything', 'file', v), 'skip');
    assert.equal(excludedEntry('base/5/xpgsql_tmp', 'file', v), 'include');
  }
});

test('.DS_Store is skipped from 15 on (backpatched), kept by 13 and 14', () => {
  assert.equal(excludedEntry('.DS_Store', 'file', 130023), 'include');
  assert.equal(excludedEntry('base/.DS_Store', 'file', 140023), 'include');
  for (const v of [150018, 160014, 170010, 180004]) {
    assert.equal(excludedEntry('.DS_Store', 'file', v), 'skip');
    assert.equal(excludedEntry('base/5/.DS_Store', 'file', v), 'skip');
  }
});

test('temporary relations are skipped in database directories only', () => {
  for (const v of ALL) {
    for (const f of ['t3_16384', 't3_16384_fsm', 't3_16384.1', 't12_99_vm.3']) {
      assert.equal(excludedEntry(`base/5/${f}`, 'file', v), 'skip', f);
      assert.equal(excludedEntry(`${TS}/5/${f}`, 'file', v), 'skip', f);
      assert.equal(excludedEntry(`global/${f}`, 'file', v), 'include', f);
      assert.equal(excludedEntry(f, 'file', v), 'include', f);
    }
    assert.equal(excludedEntry('base/5/16384', 'file', v), 'include');
  }
  assert.equal(isTemporaryRelationFileName('t_16384'), false);
  assert.equal(isTemporaryRelationFileName('t3_'), false);
  assert.equal(isTemporaryRelationFileName('t3_16384_main'), false);
  assert.equal(isTemporaryRelationFileName('t3_16384.'), false);
});

test('symlinks: kept directly in pg_tblspc, skipped anywhere else', () => {
  for (const v of ALL) {
    assert.equal(excludedEntry('pg_tblspc/16400', 'link', v), 'include');
    assert.equal(excludedEntry('pg_log', 'link', v), 'skip');
    assert.equal(excludedEntry('base/5/16384', 'link', v), 'skip');
    assert.equal(excludedEntry('pg_tblspc/16400/PG_15_202209061/x', 'link', v), 'skip');
  }
});

test("a tablespace contributes only its own server's version directory", () => {
  assert.equal(excludedEntry('pg_tblspc/16400/PG_15_202209061', 'directory', 150018), 'include');
  assert.equal(excludedEntry('pg_tblspc/16400/PG_14_202107181', 'directory', 150018), 'skip');
  assert.equal(excludedEntry('pg_tblspc/16400/lost+found', 'directory', 150018), 'skip');
  const own = { tablespaceVersionDirectory: 'PG_15_202209061' };
  assert.equal(excludedEntry('pg_tblspc/16400/PG_15_202209061', 'directory', 150018, own), 'include');
  assert.equal(excludedEntry('pg_tblspc/16400/PG_15_202201011', 'directory', 150018, own), 'skip');
  assert.equal(excludedEntry('pg_tblspc/16400/PG_18_202506291/5/16384', 'file', 180004), 'include');
});

test('unlogged relations: every fork and segment but the init fork is left out', () => {
  for (const v of ALL) {
    const names = ['16384', '16384.1', '16384_fsm', '16384_vm', '16384_init', '16384_init.1', '16390', '16390_fsm',
      '16391_init', 'PG_VERSION', 'pg_filenode.map', 't3_16392', '16393_vm'];
    assert.deepEqual([...unloggedToSkip(names, v)].sort(), ['16384', '16384.1', '16384_fsm', '16384_vm']);
    // An init fork alone (its relation's main fork not yet there) leaves nothing out.
    assert.deepEqual([...unloggedToSkip(new Set(['16391_init']), v)], []);
    // Only "<relfilenode>_init" counts, not a later init segment alone.
    assert.deepEqual([...unloggedToSkip(['17000', '17000_init.1'], v)], []);
  }
});

test('relation file names: leading zeros and ".0" segments are relation files before 17 only', () => {
  assert.deepEqual(parseRelationFileName('16384_vm.3', 160014), { relNumber: '16384', fork: 'vm', segment: 3 });
  assert.deepEqual(parseRelationFileName('16384', 180004), { relNumber: '16384', fork: 'main', segment: 0 });
  for (const v of ALL) {
    for (const bad of ['16384_main', '16384_vmx', '16384.', '16384_', 'abc', '', '12345678901', '16384.1.2']) {
      assert.equal(parseRelationFileName(bad, v), null, `${bad} ${v}`);
    }
  }
  for (const odd of ['017', '0', '17.0', '17.03']) {
    assert.notEqual(parseRelationFileName(odd, 160014), null, odd);
    assert.equal(parseRelationFileName(odd, 170010), null, odd);
  }
  assert.equal(parseRelationFileName('4294967295', 180004)?.relNumber, '4294967295');
  assert.equal(parseRelationFileName('4294967296', 180004), null);
  assert.notEqual(parseRelationFileName('4294967296', 130023), null);
  // Unlogged matching follows the version's parse.
  assert.deepEqual([...unloggedToSkip(['017', '017_init'], 160014)], ['017']);
  assert.deepEqual([...unloggedToSkip(['017', '017_init'], 170010)], []);
});

test('database directories', () => {
  assert.equal(isDatabaseDirectory('base/1'), true);
  assert.equal(isDatabaseDirectory('base/16384'), true);
  assert.equal(isDatabaseDirectory(`${TS}/16384`), true);
  for (const no of ['base', 'global', 'base/1/2', 'base/pgsql_tmp', '16384', `${TS}`, 'pg_tblspc/16400/16384', 'pg_tblspc/16400/foo/5', 'x/base/5']) {
    assert.equal(isDatabaseDirectory(no), false, no);
  }
});

test('checksummed files in 13-16: anything under global/, base/ or a tablespace but four names', () => {
  for (const v of [130023, 140023, 150018, 160014]) {
    for (const yes of ['base/5/16384', 'base/5/16384.2', 'base/5/16384_fsm', 'base/5/16384_vm', 'base/5/16384_init',
      'global/1262', `${TS}/5/16384`, 'base/5/foo', 'base/stray', `${TS}/5/sub/x`]) {
      assert.equal(isChecksummedFile(yes, v), true, `${yes} ${v}`);
    }
    for (const no of ['global/pg_control', 'global/pg_filenode.map', 'base/5/pg_filenode.map', 'base/5/PG_VERSION',
      'base/5/pg_internal.init', 'global/pg_internal.init.99', `${TS}/5/PG_VERSION`, 'pg_xact/0000', 'pg_multixact/offsets/0000',
      'PG_VERSION', 'postgresql.conf', 'pg_wal/000000010000000000000001']) {
      assert.equal(isChecksummedFile(no, v), false, `${no} ${v}`);
    }
  }
});

test('checksummed files in 17-18: relation files directly in global/ or a database directory', () => {
  for (const v of [170010, 180004]) {
    for (const yes of ['base/5/16384', 'base/5/16384.2', 'base/5/16384_fsm', 'base/5/16384_vm', 'base/5/16384_init', 'global/1262',
      `${TS}/5/16384`]) {
      assert.equal(isChecksummedFile(yes, v), true, `${yes} ${v}`);
    }
    // 13-16 verified these; 17+ does not (not relation file names, or not in a relation directory).
    for (const no of ['base/5/foo', 'base/stray', `${TS}/5/sub/x`, 'base/5/017', 'base/5/17.0', 'base/5/sub/16384',
      'global/pg_control', 'base/5/pg_filenode.map', 'base/5/PG_VERSION', 'pg_xact/0000']) {
      assert.equal(isChecksummedFile(no, v), false, `${no} ${v}`);
    }
  }
});
