// Selective restore's choice: which databases are left out (their files
// written as zeros), from --db-include or --db-exclude, by name or oid; the
// system databases always restored; a name the backup does not hold refused.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { databasesLeftOut, inDatabases, pageImageRisk } from '../../src/restore/database-selection.js';

const dbs = [
  { name: 'app', oid: 16384 },
  { name: 'postgres', oid: 5 },
  { name: 'reports', oid: 16385 },
  { name: 'template1', oid: 1 },
  { name: 'scratch', oid: 16390 },
];

test('--db-include leaves out every other user database; --db-exclude the ones named', () => {
  assert.deepEqual(databasesLeftOut('B', dbs, { include: [], exclude: [] }), []);
  assert.deepEqual(databasesLeftOut('B', dbs, { include: ['app'], exclude: [] }).map((d) => d.name), ['reports', 'scratch']);
  assert.deepEqual(databasesLeftOut('B', dbs, { include: ['app', '16385', 'template1'], exclude: [] }).map((d) => d.name), ['scratch']);
  assert.deepEqual(databasesLeftOut('B', dbs, { include: [], exclude: ['scratch', '16390'] }).map((d) => d.name), ['scratch']);
});

test('refused: an unknown name, a system database left out, both options, a backup that lists no database', () => {
  const code = (re: RegExp) => (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_USAGE' && re.test(`${e.message} ${e.hint ?? ''}`);
  assert.throws(() => databasesLeftOut('B', dbs, { include: ['nope'], exclude: [] }), code(/--db-include nope: backup B holds no such database .*app \(oid 16384\)/));
  assert.throws(() => databasesLeftOut('B', dbs, { include: [], exclude: ['postgres'] }), code(/always restored/));
  assert.throws(() => databasesLeftOut('B', dbs, { include: ['app'], exclude: ['scratch'] }), code(/given together/));
  assert.throws(() => databasesLeftOut('B', [], { include: ['app'], exclude: [] }), code(/does not record its databases/));
});

test('a database\'s files, in base/ and in tablespaces; nothing else', () => {
  const oids = new Set([16385]);
  assert.ok(inDatabases('base/16385/16400', oids));
  assert.ok(inDatabases('base/16385/PG_VERSION', oids));
  assert.ok(inDatabases('pg_tblspc/16500/PG_15_202209061/16385/16401.1', oids));
  assert.ok(!inDatabases('base/16384/16400', oids));
  assert.ok(!inDatabases('base/163851/16400', oids));
  assert.ok(!inDatabases('global/1262', oids));
  assert.ok(!inDatabases('pg_tblspc/16500/PG_15_202209061/16384/16401', oids));
  assert.ok(!inDatabases('base/16385/16400', new Set()));
});

test('selective restore is safe only when WAL rebuilds every page it changes from an image', () => {
  assert.equal(pageImageRisk({ data_checksums: true, wal_log_hints: false, full_page_writes: true }), null);
  assert.equal(pageImageRisk({ data_checksums: false, wal_log_hints: true, full_page_writes: true }), null);
  assert.match(pageImageRisk({ data_checksums: false, wal_log_hints: false, full_page_writes: true })!, /neither data checksums nor wal_log_hints/);
  assert.match(pageImageRisk({ data_checksums: true, wal_log_hints: true, full_page_writes: false })!, /full_page_writes off/);
  assert.match(pageImageRisk(undefined)!, /older pgpitr/);
});
