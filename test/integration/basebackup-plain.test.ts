// A plain backup with -X stream, a user tablespace relocated with -T, progress
// as JSON and -v: PostgreSQL's pg_verifybackup accepts it (our manifest check
// on 17+, whose manifests the machine's pg_verifybackup 15 cannot read), it
// starts as a cluster and holds exactly the source's data.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData, tableChecksums } from '../harness/data.js';
import { compatVersionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, clusterEnv, verifyPlainBackup, readState, chownTree } from '../helpers/pgpitr.js';

for (const version of compatVersionsFromEnv()) {
  test(`plain backup with relocated tablespace verifies and restores (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `plain${version}` });
    const tsDir = src.tempDir('ts1');
    await createSampleData(src, { rows: 20000, tablespaceDir: tsDir });
    const expected = await tableChecksums(src);
    const target = join(src.tempDir('backups'), 'b1');
    const newTs = join(src.tempDir('relocated'), 'ts1');

    const r = await runPgpitr(['basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-T', `${tsDir}=${newTs}`, '--progress-format=json', '-v'], clusterEnv(src));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /base backup completed/);

    const phases = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; phase?: string; bytes_total?: number | null; tablespaces_total?: number })
      .filter((e) => e.type === 'progress');
    const seen = [...new Set(phases.map((p) => p.phase))];
    // "initializing" passes before the first report; the phases the client itself sees must all appear.
    for (const p of ['waiting for checkpoint to finish', 'streaming database files', 'complete']) {
      assert.ok(seen.includes(p as never), `phase ${p} missing from ${seen.join(', ')}`);
    }
    const last = phases.at(-1)!;
    assert.equal(last.tablespaces_total, 2);
    assert.ok((last.bytes_total ?? 0) > 0);

    const state = readState(target);
    assert.equal(state.status, 'complete');
    assert.ok(typeof state.stop_lsn === 'string' && typeof state.start_lsn === 'string');

    const st = await runPgpitr(['status', target, '--output', 'json']);
    assert.equal(st.code, 0);
    assert.equal(JSON.parse(st.stdout).assessed_status, 'complete');

    await verifyPlainBackup(target, version);
    const oid = (await src.sql<{ oid: string }>("select oid::text from pg_tablespace where spcname = 'ts1'"))[0]!.oid;
    assert.equal(readlinkSync(join(target, 'pg_tblspc', oid)), newTs);

    chownTree(newTs);
    const restored = await TestCluster.startExisting(target, version, { name: `restored${version}` });
    assert.deepEqual(await tableChecksums(restored), expected);
    const loc = await restored.sql<{ l: string }>("select pg_tablespace_location(oid) as l from pg_tablespace where spcname = 'ts1'");
    assert.equal(loc[0]!.l, newTs);
  });
}
