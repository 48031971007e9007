// basebackup -X stream writes the WAL beside the backup as pg_basebackup does: the history file of
// the timeline the backup starts on (a server on timeline 2 here: a standby promoted), and
// archive_status/<name>.done for it and for every complete segment streamed (not for the last,
// partial one), in pg_wal (plain format) and in pg_wal.tar. Without the history file a restored
// copy that is promoted writes a history file without its ancestors; without the .done files a
// copy restored with archive_mode on archives those segments again (with an archive_command such
// as `test ! -f`, failing for ever while pg_wal fills).

import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { runPgbenchInit } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, verifyPlainBackup, CLI } from '../helpers/pgpitr.js';

const SEGMENT = /^[0-9A-F]{24}$/;

async function eventually(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`${what} (after ${ms} ms)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** basebackup -X stream of `c`, slowed down; once files stream, WAL is written and switched twice (complete segments). */
async function backupWithSwitches(c: TestCluster, target: string, format: string[]): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'basebackup', '-D', target, ...format, '-X', 'stream', '-c', 'fast', '-r', '8M', '--progress-format=json'], { env: { ...process.env, ...clusterEnv(c) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let switched: Promise<unknown> | null = null;
  let stderr = '';
  createInterface({ input: child.stderr }).on('line', (l) => {
    stderr += `${l}\n`;
    if (switched || !l.startsWith('{')) return;
    const p = JSON.parse(l) as { type: string; phase?: string; bytes_done?: number };
    if (p.type === 'progress' && p.phase === 'streaming database files' && (p.bytes_done ?? 0) > 1_000_000) {
      switched = (async () => {
        for (let i = 0; i < 2; i++) {
          await c.sql('create table if not exists walgen(x int); insert into walgen select generate_series(1, 1000)');
          await c.sql('select pg_switch_wal()');
        }
      })();
    }
  });
  const code = await new Promise<number | null>((r) => child.on('exit', (x) => r(x)));
  assert.equal(code, 0, stderr);
  assert.ok(switched, 'the backup ended before WAL could be switched');
  await switched;
}

for (const version of versionsFromEnv().slice(0, 1)) {
  test(`basebackup -X stream on timeline 2: the history file and archive_status/*.done beside the WAL, as pg_basebackup (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const primary = await TestCluster.create({ version, name: `walst${version}` });
    await runPgbenchInit(primary, 2);
    const dir = join(primary.tempDir('standby'), 'data');
    const bb = await runPgpitr(['basebackup', '-D', dir, '-X', 'stream', '-R', '-c', 'fast'], clusterEnv(primary));
    assert.equal(bb.code, 0, bb.stderr);
    const promoted = await TestCluster.startExisting(dir, version, { name: `walstp${version}` });
    await promoted.sql('select pg_promote()');
    await eventually('the standby was not promoted', async () => !(await promoted.sql<{ r: boolean }>('select pg_is_in_recovery() r'))[0]!.r);
    assert.equal((await promoted.sql<{ t: number }>('select timeline_id t from pg_control_checkpoint()'))[0]!.t, 2);
    const history = readFileSync(join(dir, 'pg_wal', '00000002.history'));

    // Plain: pg_wal of the backup.
    const plain = join(promoted.tempDir('plain'), 'b');
    await backupWithSwitches(promoted, plain, ['-Fp']);
    const wal = join(plain, 'pg_wal');
    assert.ok(readFileSync(join(wal, '00000002.history')).equals(history), 'the history file is not the server\'s');
    const done = readdirSync(join(wal, 'archive_status')).filter((n) => n.endsWith('.done')).map((n) => n.slice(0, -'.done'.length));
    assert.ok(done.includes('00000002.history'), `no .done for the history file: ${done.join(' ')}`);
    const segments = readdirSync(wal).filter((n) => SEGMENT.test(n)).sort();
    const doneSegments = done.filter((n) => SEGMENT.test(n)).sort();
    assert.ok(doneSegments.length >= 1, `no complete segment marked done among ${segments.join(' ')}`);
    // Every complete segment, and only those: the last one holds the end of the backup and more is
    // written to it after a restore, unless a switch of the test's (racing the backup's end) completed it.
    assert.ok(completeOnly(doneSegments, segments), `done: ${doneSegments.join(' ')}; segments: ${segments.join(' ')}`);
    for (const s of doneSegments) assert.equal(statSync(join(wal, s)).size, 16 * 1024 * 1024);
    await verifyPlainBackup(plain, version);

    // Tar: members of pg_wal.tar.
    const tarDir = join(promoted.tempDir('tar'), 'b');
    await backupWithSwitches(promoted, tarDir, ['-Ft']);
    const listed = await runCommand('tar', ['-tf', join(tarDir, 'pg_wal.tar')]);
    assert.equal(listed.code, 0, listed.stderr);
    const members = listed.stdout.split('\n').filter((l) => l !== '');
    assert.ok(members.includes('00000002.history') && members.includes('archive_status/00000002.history.done'), members.join(' '));
    const tarSegments = members.filter((n) => SEGMENT.test(n)).sort();
    const tarDone = members.filter((n) => n.startsWith('archive_status/') && n.endsWith('.done')).map((n) => n.slice('archive_status/'.length, -'.done'.length)).filter((n) => SEGMENT.test(n)).sort();
    assert.ok(tarDone.length >= 1, members.join(' '));
    assert.ok(completeOnly(tarDone, tarSegments), `done: ${tarDone.join(' ')}; segments: ${tarSegments.join(' ')}`);
    const extracted = await runCommand('tar', ['-xOf', join(tarDir, 'pg_wal.tar'), '00000002.history']);
    assert.equal(extracted.stdout, history.toString());
    assert.ok(existsSync(join(tarDir, 'base.tar')));
  });
}

/** Marked done: every segment but the last, and the last too only when it is full of WAL switched out (it then is complete). */
function completeOnly(done: string[], segments: string[]): boolean {
  return isDeepStrictEqual(done, segments.slice(0, -1)) || isDeepStrictEqual(done, segments);
}
