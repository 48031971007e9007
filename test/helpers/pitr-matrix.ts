// The point-in-time-recovery matrix, for one PostgreSQL version and one kind of
// repository: archiving through pgpitr, a backup into the repository, then a
// load during which markers are recorded (a time, the xid of a committed
// transaction, an LSN, a named restore point) with a checksum of the table at
// each. Restoring to each marker and starting PostgreSQL gives exactly that
// checksum; --target-exclusive gives the state just before; --target-immediate
// the state at the backup's end. Bad input is refused before anything is
// written, and --dry-run writes nothing. The backup restored is an incr built
// on a full backup taken first: every restore also reads the unchanged files
// the incr takes from the full backup's set (on every version, and in S3 encrypted).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { runPgpitr } from './pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from './pitr.js';
import type { RepoKind } from './pitr.js';

export function pitrMatrix(version: number, kind: RepoKind = 'posix'): void {
  const where = kind === 'posix' ? '' : `, repository ${kind}`;
  test(`point-in-time recovery to every kind of target (PostgreSQL ${version}${where})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `pitr${version}${kind === 'posix' ? '' : kind}`, kind);
    const { c } = a;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Files last written well before the full backup starts are the ones the incr takes from it.
    await c.sql('checkpoint');
    await sleep(2500);
    const fullRun = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], c.connectionEnv());
    assert.equal(fullRun.code, 0, fullRun.stderr);
    const full = JSON.parse(fullRun.stdout) as { id: string; type: string };
    assert.equal(full.type, 'full');
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, md5(g::text) from generate_series(1, 1000) g`);
    const atBackup = await tableChecksum(c);
    const backup = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json', '--type', 'incr', '--annotation', 'purpose=pitr-test'], c.connectionEnv());
    assert.equal(backup.code, 0, backup.stderr);
    const record = JSON.parse(backup.stdout) as { id: string; state: string; type: string; prior: string; references: string[]; annotations: Record<string, string> };
    assert.equal(record.state, 'complete');
    assert.equal(record.type, 'incr');
    assert.equal(record.prior, full.id);
    assert.deepEqual(record.references, [full.id], 'the incr takes no file from the full backup');
    assert.deepEqual(record.annotations, { purpose: 'pitr-test' });

    // The load, with a marker of each kind between batches.
    const batch = async (n: number) => {
      const client = await c.connect();
      try {
        await client.query('begin');
        await client.query(`insert into pitr select g, md5((g * ${n})::text) from generate_series(${n * 1000 + 1}, ${n * 1000 + 500}) g`);
        await client.query(`update pitr set v = v || '${n}' where id % 7 = ${n % 7}`);
        const xid = (await client.query<{ xid: string }>('select pg_current_xact_id()::text as xid')).rows[0]!.xid;
        await client.query('commit');
        return xid;
      } finally {
        await client.end();
      }
    };
    const before1 = await tableChecksum(c);
    const xid1 = await batch(1);
    const atXid1 = await tableChecksum(c);
    await sleep(300);
    // In ISO 8601 with "Z", as many tools print it (restore writes it with a numeric zone: the server refuses "Z" at start).
    const time2 = (await c.sql<{ t: string }>(`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z' as t`))[0]!.t;
    const atTime2 = await tableChecksum(c);
    await sleep(300);
    await batch(2);
    const lsn3 = (await c.sql<{ l: string }>('select pg_current_wal_insert_lsn()::text as l'))[0]!.l;
    const atLsn3 = await tableChecksum(c);
    await batch(3);
    await c.sql(`select pg_create_restore_point('before_drop')`);
    const atName = await tableChecksum(c);
    await batch(4);
    await c.sql('drop table pitr');
    await switchAndWaitArchived(c);

    const cases: { name: string; args: string[]; expect: string }[] = [
      { name: 'target-immediate', args: ['--target-immediate'], expect: atBackup },
      { name: 'target-xid', args: ['--target-xid', xid1], expect: atXid1 },
      { name: 'target-xid exclusive', args: ['--target-xid', xid1, '--target-exclusive'], expect: before1 },
      { name: 'target-time', args: ['--target-time', time2], expect: atTime2 },
      { name: 'target-lsn', args: ['--target-lsn', lsn3], expect: atLsn3 },
      { name: 'target-name', args: ['--target-name', 'before_drop'], expect: atName },
    ];
    for (const k of cases) {
      await t.test(k.name, async () => {
        const dir = restoreDir(c, k.name.replace(/ /g, '-'));
        const r = await restoreWith(a, dir, [...k.args, '--target-action', 'promote']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`backup ${record.id}`));
        // A named point is found from the restore point index archiving wrote, in this kind of repository too.
        if (k.name === 'target-name') {
          assert.match(r.stderr, /looking for restore point "before_drop": [1-9]\d* segment\(s\) known from the restore point index/);
          assert.doesNotMatch(r.stderr, /restore point index .*could not be/);
        }
        assert.ok(existsSync(join(dir, 'global', 'pg_control')));
        const copy = await startRecovered(dir, version, `${k.name.replace(/ /g, '-')}${version}${kind === 'posix' ? '' : kind}`);
        try {
          assert.equal(await tableChecksum(copy), k.expect, copy.logTail());
        } finally {
          await copy.destroy();
        }
        // What the prefetch does not hold (the new timeline's history file, asked for at promotion)
        // the running fetcher answers restore_command's shell (bin/pgpitr-spool-get), in this kind of repository too.
        const logs = readdirSync(a.spool, { recursive: true }).map(String).filter((p) => p.endsWith('fetcher.log'));
        assert.match(logs.map((p) => readFileSync(join(a.spool, p), 'utf8')).join(''), /answered 00000002\.history: not in the archive/);
      });
    }

    await t.test('bad input is refused before anything is written', async () => {
      const dir = restoreDir(c, 'refused');
      const expectRefused = async (args: string[], code: number, message: RegExp, target = dir) => {
        const r = await runPgpitr(['restore', ...a.repoArgs, '--spool-path', a.spool, '-D', target, ...args]);
        assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
      };
      await expectRefused(['--target-time', '2000-01-01 00:00:00+00'], 6, /target time 2000-01-01 00:00:00\+00 is before the point where every backup is consistent/);
      await expectRefused(['--target-lsn', 'FF/0'], 6, /target LSN FF\/0 is beyond the end of the archive/);
      // In the empty rest of the last archived segment, after its WAL switch: the first record at or
      // after it is in the next segment, not archived; recovery would fail once the copy is written.
      // The newest archived segment (switchAndWaitArchived may have switched twice on a slow machine); nothing switches after it.
      const lastSwitched = (await c.sql<{ w: string }>('select last_archived_wal as w from pg_stat_archiver'))[0]!.w;
      const segBytes = BigInt((await c.sql<{ s: string }>(`select pg_size_bytes(current_setting('wal_segment_size'))::text as s`))[0]!.s);
      const segStart = (BigInt(`0x${lastSwitched.slice(8, 16)}`) * (0x100000000n / segBytes) + BigInt(`0x${lastSwitched.slice(16, 24)}`)) * segBytes;
      const tail = segStart + segBytes - 8n;
      const tailLsn = `${(tail >> 32n).toString(16).toUpperCase()}/${(tail & 0xffffffffn).toString(16).toUpperCase()}`;
      await expectRefused(['--target-lsn', tailLsn], 6, new RegExp(`target LSN ${tailLsn} cannot be reached from the archive: .*(no record begins at or after it in ${lastSwitched}|runs on into WAL segment)`));
      // A transaction that never ended (here: never began) in the archive after the backup.
      const unended = String(BigInt(xid1) + 1_000_000n);
      await expectRefused(['--target-xid', unended], 6, new RegExp(`target transaction ${unended} does not end in the archive after the start of backup`));
      await expectRefused(['--set', '20000101-000000F'], 6, /backup "20000101-000000F" does not exist/);
      writeFileSync(join(dir, 'stray'), 'x');
      await expectRefused([], 5, /exists and is not empty/);
      await expectRefused(['--delta'], 5, /is not a PostgreSQL data directory/);
      await expectRefused([], 5, /a PostgreSQL server \(pid \d+\) is running/, c.dataDir);
      const missing = await runPgpitr(['restore', '--repo', join(dir, 'nope'), '--stanza', 'main', '-D', join(dir, 'x')]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /does not exist or cannot be reached/);
      assert.deepEqual(existsSync(join(dir, 'x')), false);
    });

    await t.test('--dry-run prints the plan and writes nothing', async () => {
      const dir = join(restoreDir(c, 'dry'), 'data');
      const r = await restoreWith(a, dir, ['--dry-run', '--target-name', 'before_drop', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const plan = JSON.parse(r.stdout) as { backup: string; dry_run: boolean; wal_needed: { segments: number } };
      assert.equal(plan.backup, record.id);
      assert.equal(plan.dry_run, true);
      assert.ok(plan.wal_needed.segments >= 1);
      assert.equal(existsSync(dir), false);
    });
  });
}
