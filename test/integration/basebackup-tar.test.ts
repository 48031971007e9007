// Tar-format backups: base.tar, one <oid>.tar per tablespace, pg_wal.tar and
// backup_manifest, uncompressed and with every compression method on the
// client and (15+) on the server. Each extracts with the system's tools into a
// directory that pg_verifybackup accepts, starts, and holds the source's data.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData, tableChecksums } from '../harness/data.js';
import { compatVersionsFromEnv, versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, verifyPlainBackup, chownTree } from '../helpers/pgpitr.js';
import { extractTarBackup } from '../helpers/tar-extract.js';

interface Variant {
  name: string;
  args: string[];
  suffix: string;
  minVersion: number;
}

const VARIANTS: Variant[] = [
  { name: 'uncompressed', args: [], suffix: '', minVersion: 13 },
  { name: 'client gzip (-z)', args: ['-z'], suffix: '.gz', minVersion: 13 },
  { name: 'client lz4', args: ['-Z', 'client-lz4'], suffix: '.lz4', minVersion: 13 },
  { name: 'client zstd:5', args: ['-Z', 'zstd:5'], suffix: '.zst', minVersion: 13 },
  { name: 'server gzip', args: ['-Z', 'server-gzip:1'], suffix: '.gz', minVersion: 15 },
  { name: 'server lz4', args: ['-Z', 'server-lz4'], suffix: '.lz4', minVersion: 15 },
  { name: 'server zstd', args: ['-Z', 'server-zstd:level=3'], suffix: '.zst', minVersion: 15 },
];

const full = new Set(versionsFromEnv());

for (const version of compatVersionsFromEnv()) {
  test(`tar backups extract, verify and restore (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `tar${version}` });
    const tsDir = src.tempDir('ts1');
    await createSampleData(src, { rows: 5000, tablespaceDir: tsDir });
    const expected = await tableChecksums(src);
    const oid = (await src.sql<{ oid: string }>("select oid::text from pg_tablespace where spcname = 'ts1'"))[0]!.oid;
    // Every version gets the uncompressed and one client-compressed variant; the full set runs on the main versions.
    const variants = VARIANTS.filter((v) => version >= v.minVersion && (full.has(version) || v.name === 'uncompressed' || v.name === 'client lz4'));
    for (const v of variants) {
      await t.test(v.name, async (st) => {
        const out = src.tempDir(`tar-${v.name.replace(/\W+/g, '-')}`);
        const r = await runPgpitr(['basebackup', '-D', out, '-Ft', '-Xstream', '-cfast', ...v.args], clusterEnv(src));
        if (r.code !== 0 && /this build does not support compression/.test(r.stderr)) {
          // The npm builds of some versions lack lz4/zstd; the server says so and we pass it on.
          assert.equal(r.code, 4);
          assert.deepEqual(readdirSync(out), []);
          st.skip(`server built without ${v.name.split(' ')[1]}`);
          return;
        }
        assert.equal(r.code, 0, r.stderr);
        const files = readdirSync(out).sort();
        assert.deepEqual(files, [`${oid}.tar${v.suffix}`, `base.tar${v.suffix}`, 'backup_manifest', `pg_wal.tar${v.name.startsWith('client gzip') ? v.suffix : ''}`, 'pgpitr_backup.state'].sort());
        const data = src.tempDir(`x-${v.name.replace(/\W+/g, '-')}`);
        const tsRoot = src.tempDir(`xts-${v.name.replace(/\W+/g, '-')}`);
        const { relocateTablespaces } = await extractTarBackup(out, data, tsRoot);
        writeFileSync(join(data, 'pgpitr_backup.state'), readFileSync(join(out, 'pgpitr_backup.state')));
        await verifyPlainBackup(data, version);
        relocateTablespaces();
        chownTree(tsRoot);
        const restored = await TestCluster.startExisting(data, version, { name: `tarrestored${version}` });
        try {
          assert.deepEqual(await tableChecksums(restored), expected);
        } finally {
          await restored.stop();
        }
      });
    }
    // Plain format with server-side compression: the client decompresses while extracting.
    for (const algo of ['gzip', 'lz4', 'zstd']) {
      if (version < 15 || !full.has(version)) break;
      await t.test(`plain with server-${algo}`, async (st) => {
        const out = src.tempDir(`plain-server-${algo}`);
        const newTs = src.tempDir(`plain-server-ts-${algo}`);
        const r = await runPgpitr(['basebackup', '-D', out, '-Fp', '-Z', `server-${algo}`, '-c', 'fast', '-T', `${tsDir}=${newTs}`], clusterEnv(src));
        if (r.code !== 0 && /this build does not support compression/.test(r.stderr)) {
          st.skip(`server built without ${algo}`);
          return;
        }
        assert.equal(r.code, 0, r.stderr);
        await verifyPlainBackup(out, version);
        chownTree(newTs);
        const restored = await TestCluster.startExisting(out, version, { name: `plainsrv${version}${algo}` });
        try {
          assert.deepEqual(await tableChecksums(restored), expected);
        } finally {
          await restored.stop();
        }
      });
    }
  });
}
