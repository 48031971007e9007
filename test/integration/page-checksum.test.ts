// pageChecksum against a real server's pages: a PostgreSQL cluster with data
// checksums writes a table, checkpoints and stops; every initialised page of
// the table's files (main fork and free space map) carries the checksum we
// compute, and a flipped byte is reported as the server would report it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import {
  PAGE_SIZE, blockNumberBase, pageChecksum, pageIsNew, pageLsn, storedChecksum, verifyPage,
} from '../../src/postgres/page-checksum.js';

for (const version of versionsFromEnv()) {
  test(`page checksums match the server's (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const pg = await TestCluster.create({ version, name: `pagecheck${version}` });
    await pg.sql('create table pc (id int primary key, t text)');
    await pg.sql("insert into pc select g, repeat(md5(g::text), 1 + g % 7) from generate_series(1, 20000) g");
    await pg.sql('vacuum pc'); // writes the free space map and visibility map forks too
    await pg.sql('checkpoint');
    const rel = (await pg.sql<{ p: string; i: string }>(
      "select pg_relation_filepath('pc') as p, pg_relation_filepath('pc_pkey') as i",
    ))[0]!;
    await pg.stop('fast');

    let checked = 0;
    for (const file of [rel.p, `${rel.p}_fsm`, `${rel.p}_vm`, rel.i]) {
      const path = join(pg.dataDir, file);
      const data = readFileSync(path);
      assert.equal(data.length % PAGE_SIZE, 0, `${file} is whole pages`);
      assert.equal(data.length, statSync(path).size);
      const base = blockNumberBase(file);
      for (let off = 0, blk = 0; off < data.length; off += PAGE_SIZE, blk++) {
        const page = data.subarray(off, off + PAGE_SIZE);
        if (pageIsNew(page)) continue;
        assert.equal(pageChecksum(page, base + blk), storedChecksum(page), `${file} block ${blk}`);
        assert.equal(verifyPage(page, base + blk, pageLsn(page) + 1n), 'ok');
        assert.equal(verifyPage(page, base + blk, pageLsn(page)), 'skipped', 'LSN at the start LSN is not checked');
        checked++;
      }
    }
    assert.ok(checked > 100, `only ${checked} pages checked`);

    // A byte flipped in a tuple: the checksum no longer matches.
    const data = readFileSync(join(pg.dataDir, rel.p));
    const page = Buffer.from(data.subarray(0, PAGE_SIZE));
    const stored = storedChecksum(page);
    page[PAGE_SIZE - 100]! ^= 0x01;
    const v = verifyPage(page, 0, 0xffffffffffffffffn);
    assert.deepEqual(v, { expected: stored, calculated: pageChecksum(page, 0) });
    assert.notEqual(pageChecksum(page, 0), stored);
    // The same page claimed at another block number does not match either.
    page[PAGE_SIZE - 100]! ^= 0x01;
    assert.equal(pageChecksum(page, 0), stored);
    assert.notEqual(pageChecksum(page, 1), stored);
  });
}
