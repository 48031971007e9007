// Smoke test for the test harness itself: for each version in PGPITR_TEST_VERSIONS, create a
// cluster, query it, load sample + pgbench data, checksum, restart, re-adopt the stopped data
// dir with startExisting(), and make sure everything is stopped and removed afterwards.

import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { after, describe, test } from "node:test";
import { TestCluster, destroyAll } from "./cluster.js";
import { createSampleData, runPgbenchInit, tableChecksums } from "./data.js";
import { versionsFromEnv } from "./pg-versions.js";

after(destroyAll);

for (const version of versionsFromEnv()) {
  describe(`harness on PostgreSQL ${version}`, () => {
    test("create, query, sample data, checksum, restart, startExisting, destroy", async () => {
      const cluster = await TestCluster.create({ version, conf: { log_min_messages: "warning" } });
      let adopted: TestCluster | undefined;
      try {
        const [{ v }] = await cluster.sql<{ v: string }>("select version() as v");
        assert.match(v, new RegExp(`^PostgreSQL ${version}\\.`));
        const [{ data_checksums }] = await cluster.sql<{ data_checksums: string }>("show data_checksums");
        assert.equal(data_checksums, "on");
        const [{ wal_level }] = await cluster.sql<{ wal_level: string }>("show wal_level");
        assert.equal(wal_level, "replica");
        const [{ x }] = await cluster.sql<{ x: number }>("select $1::int + 1 as x", [41]);
        assert.equal(x, 42);

        const info = await createSampleData(cluster, { rows: 5000, tablespaceDir: cluster.tempDir("ts1") });
        await runPgbenchInit(cluster, 1);
        const sums = await tableChecksums(cluster);
        for (const t of [...info.tables, "public.pgbench_accounts"]) assert.ok(sums[t], `missing checksum for ${t}`);
        assert.match(sums["public.sample_mixed"], /^5000:[0-9a-f]{32}$/);
        assert.match(sums["public.pgbench_accounts"], /^100000:/);
        const [{ toasted }] = await cluster.sql<{ toasted: string }>(
          "select pg_relation_size(reltoastrelid)::text as toasted from pg_class where relname = 'sample_toast'",
        );
        assert.ok(Number(toasted) > 0, "sample_toast should have out-of-line TOAST data");

        await cluster.restart();
        assert.deepEqual(await tableChecksums(cluster), sums);

        await cluster.stop();
        assert.equal(cluster.isRunning, false);
        adopted = await TestCluster.startExisting(cluster.dataDir, version, { name: `pg${version}-adopted` });
        assert.notEqual(adopted.host, cluster.host);
        assert.deepEqual(await tableChecksums(adopted), sums);
        assert.match(adopted.log(), /ready to accept connections/);
      } finally {
        // Destroying the owner first must also stop the cluster running on its data dir.
        await cluster.destroy();
      }
      assert.ok(adopted);
      assert.equal(adopted.isRunning, false);
      assert.equal(existsSync(cluster.baseDir), false);
      assert.equal(existsSync(adopted.baseDir), false);
    });
  });
}
