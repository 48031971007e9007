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
  assert.throws(
    () => databasesLeftOut('B', dbs, { include: ['nope'], exclude: [] }),
    (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_NOT_FOUND' && /--db-include nope: backup B holds no such database/.test(e.message) && /app \(oid 16384\)/.test(e.hint ?? ''),
  );
  assert.throws(() => databasesLeftOut('B', dbs, { include: [], exclude: ['template0'] }), code(/template0: the cluster needs it/));
  assert.throws(() => databasesLeftOut('B', dbs, { include: [], exclude: ['postgres'] }), code(/always restored/));
  assert.throws(() => databasesLeftOut('B', dbs, { include: ['app'], exclude: ['scratch'] }), code(/given together/));
  assert.throws(() => databasesLeftOut('B', [], { include: ['app'], exclude: [] }), (e: Error & { code?: string }) => e.code === 'ERR_NOT_FOUND' && /does not record its databases/.test(e.message));
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

test('selective restore is safe only when WAL gives the image of every page it changes in the databases left out', () => {
  const out = [{ name: 'reports', oid: 16385 }];
  const base = { data_checksums: true, wal_log_hints: false, full_page_writes: true, hash_index_databases: [16384], unchecked_databases: [] };
  assert.equal(pageImageRisk(base, out), null);
  assert.equal(pageImageRisk({ ...base, data_checksums: false, wal_log_hints: true }, out), null);
  assert.match(pageImageRisk({ ...base, data_checksums: false }, out)!, /neither data checksums nor wal_log_hints/);
  assert.match(pageImageRisk({ ...base, data_checksums: false, wal_log_hints: null }, out)!, /taken from a standby without data checksums/);
  assert.equal(pageImageRisk({ ...base, wal_log_hints: null }, out), null);
  assert.match(pageImageRisk({ ...base, full_page_writes: false }, out)!, /full_page_writes off/);
  assert.match(pageImageRisk({ ...base, full_page_writes: null }, out)!, /could not read the primary's full_page_writes/);
  assert.match(pageImageRisk({ ...base, hash_index_databases: [16385] }, out)!, /reports hold hash indexes/);
  assert.match(pageImageRisk({ ...base, unchecked_databases: [16385] }, out)!, /reports could not be checked/);
  const { hash_index_databases: _, ...older } = base;
  assert.match(pageImageRisk(older, out)!, /which databases hold hash indexes/);
  assert.match(pageImageRisk(undefined, out)!, /older pgpitr; a new backup records it/);
});
