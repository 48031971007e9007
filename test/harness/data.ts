// Test data helpers: create recognisable sample data (mixed types, TOAST, tablespace,
// sequence, index), load pgbench tables, and fingerprint every user table so a source
// cluster and a restored copy can be compared with a single deepStrictEqual.

import { join } from "node:path";
import type { TestCluster } from "./cluster.js";
import { clientToolDir } from "./pg-versions.js";
import { describeFailure, runCommand } from "./run.js";

export interface SampleDataOptions {
  /** Rows in sample_mixed (default 10000). */
  rows?: number;
  /** If given, creates tablespace ts1 here (absolute, empty, owned by postgres) and table sample_ts in it. */
  tablespaceDir?: string;
  database?: string;
}

export interface SampleDataInfo {
  /** Qualified names of the tables created, as used as keys by tableChecksums(). */
  tables: string[];
  sequences: string[];
  tablespace?: string;
}

/** Creates sample_mixed, sample_toast, sample_seq and (optionally) sample_ts in tablespace ts1. */
export async function createSampleData(cluster: TestCluster, opts: SampleDataOptions = {}): Promise<SampleDataInfo> {
  const rows = opts.rows ?? 10_000;
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`rows must be a non-negative integer, got ${rows}`);
  const sqlOpts = { database: opts.database ?? "postgres" };

  await cluster.sql(
    `
    CREATE TABLE sample_mixed (
      id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      n       integer NOT NULL,
      amount  numeric(12,2),
      label   text,
      created timestamp,
      flag    boolean,
      payload jsonb,
      tags    text[],
      uid     uuid,
      raw     bytea
    );
    INSERT INTO sample_mixed (n, amount, label, created, flag, payload, tags, uid, raw)
    SELECT i,
           (i * 7919 % 1000000) / 100.0,
           CASE WHEN i % 11 = 0 THEN NULL ELSE 'label-' || md5(i::text) END,
           timestamp '2024-01-01 00:00:00' + i * interval '1 minute',
           i % 3 = 0,
           jsonb_build_object('i', i, 'sq', i::bigint * i, 'name', 'n' || i),
           ARRAY['t' || (i % 10), 't' || (i % 7)],
           md5('u' || i)::uuid,
           decode(md5(i::text), 'hex')
      FROM generate_series(1, ${rows}) AS i;
    CREATE INDEX sample_mixed_label_idx ON sample_mixed (label);

    CREATE TABLE sample_toast (id integer PRIMARY KEY, body text);
    ALTER TABLE sample_toast ALTER COLUMN body SET STORAGE EXTERNAL;  -- force out-of-line TOAST
    INSERT INTO sample_toast
    SELECT i, (SELECT string_agg(md5(i || ':' || j), '') FROM generate_series(1, 100 + i * 50) AS j)
      FROM generate_series(1, 40) AS i;

    CREATE SEQUENCE sample_seq;
    SELECT setval('sample_seq', 1000);
    `,
    undefined,
    sqlOpts,
  );

  const info: SampleDataInfo = {
    tables: ["public.sample_mixed", "public.sample_toast"],
    sequences: ["public.sample_seq"],
  };
  if (opts.tablespaceDir !== undefined) {
    // CREATE TABLESPACE cannot run inside the implicit transaction of a multi-statement query.
    await cluster.sql(`CREATE TABLESPACE ts1 LOCATION '${opts.tablespaceDir.replace(/'/g, "''")}'`, undefined, sqlOpts);
    await cluster.sql(
      `
      CREATE TABLE sample_ts (id integer PRIMARY KEY USING INDEX TABLESPACE ts1, v text) TABLESPACE ts1;
      INSERT INTO sample_ts SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 2000) AS i;
      `,
      undefined,
      sqlOpts,
    );
    info.tables.push("public.sample_ts");
    info.tablespace = "ts1";
  }
  return info;
}

/**
 * For every permanent user table ("schema.table", quoted as needed):
 * "<rowcount>:<md5 of all rows as text, sorted>". Unlogged/temp tables are skipped
 * (they are legitimately empty after a restore). Session settings that affect text
 * output are pinned so two clusters with different configs still compare equal.
 */
export async function tableChecksums(cluster: TestCluster, db = "postgres"): Promise<Record<string, string>> {
  const client = await cluster.connect({ database: db });
  try {
    await client.query(
      `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres';
       SET extra_float_digits = 1; SET bytea_output = 'hex'`,
    );
    const tables = await client.query<{ name: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND c.relpersistence = 'p'
          AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1`,
    );
    const out: Record<string, string> = {};
    for (const { name } of tables.rows) {
      const r = await client.query<{ n: string; h: string }>(
        `SELECT count(*)::text AS n, coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') AS h FROM ${name} AS t`,
      );
      const row = r.rows[0];
      out[name] = `${row.n}:${row.h}`;
    }
    return out;
  } finally {
    await client.end();
  }
}

/** `pgbench -i -s scale` (Debian PG15 pgbench) against the cluster. */
export async function runPgbenchInit(cluster: TestCluster, scale: number, database = "postgres"): Promise<void> {
  const args = ["-i", "-q", "-s", String(scale), database];
  const res = await runCommand(join(clientToolDir(), "pgbench"), args, {
    env: { ...process.env, ...cluster.connectionEnv() },
    timeoutMs: 600_000,
  });
  if (res.code !== 0) throw new Error(`pgbench init on ${cluster.name} failed:\n${describeFailure("pgbench", args, res)}`);
}
