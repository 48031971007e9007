// receive-wal: pg_receivewal's behaviour (segments byte-identical to the
// server's, .partial for the current one, slots, -E), repository mode across a
// server restart and a timeline switch (promoted standby), and synchronous mode
// listed in synchronous_standby_names: a committed transaction's WAL is in our
// files when COMMIT returns, even if the primary dies right after.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, chownTree } from '../helpers/pgpitr.js';
import { startReceiver, until, untilReceiving } from '../helpers/receive-wal.js';
import { archivedOnDisk } from '../helpers/archiving.js';
import { eachOf } from '../helpers/each-of.js';
import { formatLsn } from '../../src/postgres/lsn.js';

const SEGMENT = /^[0-9A-F]{24}$/;

async function makeWal(c: TestCluster, mb = 20): Promise<string> {
  await c.sql(`create table if not exists filler(x text); insert into filler select repeat(md5(i::text), 32) from generate_series(1, ${mb * 1000}) i`);
  return (await c.sql<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name'))[0]!.name;
}

for (const version of versionsFromEnv()) {
  test(`receive-wal (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `rw${version}`, conf: { wal_keep_size: '1GB' } });
    const env = clusterEnv(src);

    await t.test('directory mode with a slot: completed segments identical to the server', async () => {
      const dir = src.tempDir('rw-dir');
      const mk = await runPgpitr(['receive-wal', '--create-slot', '-S', 'rw_slot'], env);
      assert.equal(mk.code, 0, mk.stderr);
      const again = await runPgpitr(['receive-wal', '--create-slot', '--if-not-exists', '-S', 'rw_slot'], env);
      assert.equal(again.code, 0, again.stderr);
      const rx = startReceiver(['-D', dir, '-S', 'rw_slot'], env);
      const last = await makeWal(src);
      await until(`segment ${last}`, () => existsSync(join(dir, last)));
      assert.equal(await rx.stop(), 0, rx.log());
      const segments = readdirSync(dir).filter((f) => SEGMENT.test(f));
      assert.ok(segments.length >= 2);
      for (const f of segments) assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(src.dataDir, 'pg_wal', f))), `${f} differs`);
      // The slot's position advanced to what we flushed.
      const slot = await src.sql<{ lsn: string | null }>("select restart_lsn::text as lsn from pg_replication_slots where slot_name = 'rw_slot'");
      assert.ok(slot[0]?.lsn);
      const drop = await runPgpitr(['receive-wal', '--drop-slot', '-S', 'rw_slot'], env);
      assert.equal(drop.code, 0, drop.stderr);
      // A slot that does not exist: the named object is missing (6), to drop or to stream from.
      const again2 = await runPgpitr(['receive-wal', '--drop-slot', '-S', 'rw_slot'], env);
      assert.equal(again2.code, 6, again2.stderr);
      assert.match(again2.stderr, /replication slot "rw_slot" does not exist/);
      const missing = await runPgpitr(['receive-wal', '-D', src.tempDir('rw-noslot'), '-S', 'rw_slot', '-n'], env);
      assert.equal(missing.code, 6, missing.stderr);
      // A directory ahead of the server (as after an upstream standby restarted behind it): waited
      // for, seen from IDENTIFY_SYSTEM's position, whatever language the server's messages are in.
      const ahead = src.tempDir('rw-ahead');
      writeFileSync(join(ahead, '0000000100000000000000F0'), Buffer.alloc(16 * 1024 * 1024));
      const rxAhead = startReceiver(['-D', ahead], env);
      await until('the wait for the server', () => /WAL ends at [0-9A-F]+\/[0-9A-F]+, before 0\/F1000000 where streaming resumes; retrying/.test(rxAhead.log()), rxAhead.log);
      assert.equal(await rxAhead.stop(), 0, rxAhead.log());
    });

    await t.test('repository mode across a server restart', async () => {
      const repo = src.tempDir('rw-repo');
      assert.equal((await runPgpitr(['stanza-create', '--repo', repo, '--stanza', 'main'], env)).code, 0);
      const rx = startReceiver(['--repo', repo, '--stanza', 'main', '-s', '1'], env);
      await untilReceiving(rx, src);
      // Named as pg_receivewal names itself (synchronous_standby_names written for it).
      assert.deepEqual(await src.sql<{ a: string }>("select application_name as a from pg_stat_replication"), [{ a: 'pg_receivewal' }]);
      // A second receiver into the same stanza: refused (it would write the same .partial).
      const twice = await runPgpitr(['receive-wal', '--repo', repo, '--stanza', 'main'], env);
      assert.equal(twice.code, 5, twice.stdout + twice.stderr);
      assert.match(twice.stderr, /receive-wal directory .* is locked by "receive-wal" \(pid \d+/);
      assert.match(twice.stderr, /hint: one receive-wal per directory/);
      const first = await makeWal(src);
      await until(`${first} in the repository`, () => archivedOnDisk(repo, 'main').some((f) => f.name === first), rx.log);
      // Without a slot or --synchronous its flush position is not reported (as pg_receivewal): the
      // server can never take it for a synchronous standby.
      await until('a status reply', async () => (await src.sql<{ w: string | null }>('select write_lsn::text as w from pg_stat_replication'))[0]?.w != null, rx.log);
      assert.deepEqual(await src.sql<{ f: string | null }>('select flush_lsn::text as f from pg_stat_replication'), [{ f: null }]);
      await src.restart();
      const second = await makeWal(src);
      await until(`${second} in the repository after the restart`, () => archivedOnDisk(repo, 'main').some((f) => f.name === second), rx.log);
      assert.match(rx.log(), /warning: connection lost: .*; retrying in/); // a warning: said without -v too
      // A stanza fed by receive-wal alone passes check: archive_mode and archive_command are only
      // said, and the WAL switch's segment reaches the stanza through the receiver.
      const chk = await runPgpitr(['check', '--repo', repo, '--stanza', 'main'], env);
      assert.equal(chk.code, 0, chk.stdout + chk.stderr + rx.log());
      assert.match(chk.stdout, /a WAL receiver streams from this server/);
      assert.match(chk.stdout, /reached the repository/);
      assert.equal(await rx.stop(), 0, rx.log());
      const out = src.tempDir('rw-fetched');
      const r = await runPgpitr(['archive-get', '--repo', repo, '--stanza', 'main', second, join(out, second)]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(join(out, second)).equals(readFileSync(join(src.dataDir, 'pg_wal', second))));
      const info = JSON.parse((await runPgpitr(['info', '--repo', repo, '--output', 'json'])).stdout) as { stanzas: { archive: { timelines: { gaps: unknown[] }[] } }[] };
      assert.deepEqual(info.stanzas[0]!.archive.timelines[0]!.gaps, []);
      // A directory holding what a -Z run left compressed: it would count as received and never be stored (a gap).
      const gz = src.tempDir('rw-gz');
      writeFileSync(join(gz, '000000010000000000000001.gz'), 'x');
      const refused = await runPgpitr(['receive-wal', '--repo', repo, '--stanza', 'main', '-D', gz, '-n'], env);
      assert.equal(refused.code, 5, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /holds compressed WAL \(000000010000000000000001\.gz\), left by receive-wal -Z or pg_receivewal/);
    });

    await t.test('repository mode: stanza-delete ends the stream before the next segment, naming the stanza', async () => {
      const repo = src.tempDir('rw-deleted');
      assert.equal((await runPgpitr(['stanza-create', '--repo', repo, '--stanza', 'main'], env)).code, 0);
      const rx = startReceiver(['--repo', repo, '--stanza', 'main'], env);
      await untilReceiving(rx, src);
      const del = await runPgpitr(['stanza-delete', '--repo', repo, '--stanza', 'main', '--force']);
      assert.equal(del.code, 0, del.stderr);
      // No segment switched: the receiver stops on its own check, not at a failed store.
      const code = await Promise.race([rx.exited, new Promise<string>((res) => setTimeout(() => res('still running'), 20_000))]);
      if (code === 'still running') await rx.stop();
      assert.equal(code, 6, rx.log());
      assert.match(rx.log(), /stanza "main" no longer exists in repository .*deleted while this process ran/);
      assert.doesNotMatch(rx.log(), /ENOENT/);
    });

    await t.test('repository mode follows a timeline switch (standby promoted)', async () => {
      const standbyDir = join(src.tempDir('rw-standby'), 'data');
      const bb = await runPgpitr(['basebackup', '-D', standbyDir, '-R', '-c', 'fast'], env);
      assert.equal(bb.code, 0, bb.stderr);
      chownTree(standbyDir);
      const standby = await TestCluster.startExisting(standbyDir, version, { name: `rwstandby${version}` });
      const repo = src.tempDir('rw-repo2');
      assert.equal((await runPgpitr(['stanza-create', '--repo', repo, '--stanza', 'main'], env)).code, 0);
      const senv = clusterEnv(standby);
      const rx = startReceiver(['--repo', repo, '--stanza', 'main'], senv);
      await untilReceiving(rx, src, 'streaming from the standby');
      await standby.sql('select pg_promote()');
      await until('promotion', async () => (await standby.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r === false);
      const onTl2 = await makeWal(standby);
      assert.match(onTl2, /^00000002/);
      await until(`${onTl2} in the repository`, () => archivedOnDisk(repo, 'main').some((f) => f.name === onTl2));
      assert.ok(archivedOnDisk(repo, 'main').some((f) => f.name === '00000002.history'));
      assert.match(rx.log(), /switched to timeline 2/);
      assert.equal(await rx.stop(), 0, rx.log());
      // A receiver started afresh on timeline 2 fetches its history file first, as pg_receivewal.
      const fresh = src.tempDir('rw-fresh-tl2');
      const rx2 = startReceiver(['-D', fresh], senv);
      await untilReceiving(rx2, standby, 'streaming timeline 2 afresh');
      assert.equal(await rx2.stop(), 0, rx2.log());
      assert.match(readFileSync(join(fresh, '00000002.history'), 'utf8'), /^1\t/);
      // Repository mode: a history file left in the receiver's directory by a run whose storing of it
      // failed is stored at the next start, not taken for archived.
      const repo3 = src.tempDir('rw-repo3');
      assert.equal((await runPgpitr(['stanza-create', '--repo', repo3, '--stanza', 'main'], env)).code, 0);
      mkdirSync(join(repo3, 'main', 'receive-wal'), { recursive: true });
      writeFileSync(join(repo3, 'main', 'receive-wal', '00000002.history'), readFileSync(join(fresh, '00000002.history')));
      const rx3 = startReceiver(['--repo', repo3, '--stanza', 'main'], senv);
      await untilReceiving(rx3, standby, 'streaming timeline 2 into a third repository');
      assert.equal(await rx3.stop(), 0, rx3.log());
      assert.ok(archivedOnDisk(repo3, 'main').some((f) => f.name === '00000002.history'), rx3.log());
      // A stanza of another database system (-h at the wrong cluster): refused on connecting, before
      // anything is received or stored (a history file records no system of its own).
      const other = await TestCluster.create({ version, name: `rwother${version}`, fresh: true });
      const repo4 = src.tempDir('rw-repo4');
      assert.equal((await runPgpitr(['stanza-create', '--repo', repo4, '--stanza', 'main'], clusterEnv(other))).code, 0);
      await other.destroy();
      const wrong = await runPgpitr(['receive-wal', '--repo', repo4, '--stanza', 'main'], senv);
      assert.equal(wrong.code, 5, wrong.stdout + wrong.stderr);
      assert.match(wrong.stderr, /the server is database system \d+, stanza "main" is for system \d+/);
      assert.deepEqual(archivedOnDisk(repo4, 'main'), [], 'nothing stored');
      // --create-slot too: no slot left on a server whose WAL the stanza refuses.
      const slot = await runPgpitr(['receive-wal', '--repo', repo4, '--stanza', 'main', '-S', 'wrong_system', '--create-slot'], senv);
      assert.equal(slot.code, 5, slot.stdout + slot.stderr);
      assert.match(slot.stderr, /the server is database system \d+, stanza "main" is for system \d+/);
      assert.equal((await standby.sql<{ n: number }>("select count(*)::int as n from pg_replication_slots where slot_name = 'wrong_system'"))[0]!.n, 0);
      await standby.stop();
    });

    // Compression of received segments is pgpitr's own: the newest tested version proves it.
    const compressions = version === versionsFromEnv().at(-1) ? ([['gzip', '.gz', 'gzip'], ['lz4:1', '.lz4', 'lz4']] as const) : [];
    for (const [method, ext, tool] of compressions) {
      await t.test(`-Z ${method}: ${ext} segments that decompress to the server's, ${ext}.partial resumed after a restart`, async () => {
        const dir = src.tempDir(`rw-z-${tool}`);
        const args = ['-D', dir, '-Z', method];
        const first = (await src.sql<{ n: string }>('select pg_walfile_name(pg_current_wal_lsn()) as n'))[0]!.n;
        let rx = startReceiver(args, env);
        await untilReceiving(rx, src);
        const mid = await makeWal(src, 5);
        await until(`${mid}${ext}`, () => existsSync(join(dir, mid + ext)), rx.log);
        await src.sql('insert into filler values (1)');
        const current = (await src.sql<{ n: string }>('select pg_walfile_name(pg_current_wal_lsn()) as n'))[0]!.n;
        await until(`${current}${ext}.partial`, () => existsSync(join(dir, `${current}${ext}.partial`)), rx.log);
        assert.equal(await rx.stop(), 0, rx.log());
        // Stopped cleanly, the .partial file is a whole stream: what was received of the segment.
        const cut = spawnSync(tool, ['-dc', join(dir, `${current}${ext}.partial`)], { maxBuffer: 64 << 20 });
        assert.equal(cut.status, 0, String(cut.stderr));
        assert.ok(cut.stdout.length > 0 && cut.stdout.equals(readFileSync(join(src.dataDir, 'pg_wal', current)).subarray(0, cut.stdout.length)), `${current}${ext}.partial`);
        rx = startReceiver(args, env);
        const last = await makeWal(src, 5);
        await until(`${last}${ext}`, () => existsSync(join(dir, last + ext)), rx.log);
        assert.equal(await rx.stop(), 0, rx.log());
        assert.match(rx.log(), new RegExp(`starting log streaming at [0-9A-F]+/[0-9A-F]+`));
        const names = readdirSync(dir);
        assert.ok(!names.some((n) => SEGMENT.test(n) || n.endsWith('.partial') && !n.endsWith(`${ext}.partial`)), names.join(' '));
        const out = src.tempDir(`rw-z-${tool}-plain`);
        const complete = names.filter((n) => n.endsWith(ext)).map((n) => n.slice(0, 24)).sort();
        // (pg_walfile_name names the previous segment when the position is at a boundary)
        assert.ok(complete[0]! <= first || BigInt('0x' + complete[0]) === BigInt('0x' + first) + 1n, `${complete[0]} after ${first}`);
        assert.equal(complete[complete.length - 1], last);
        assert.equal(complete.length, Number(BigInt('0x' + last) - BigInt('0x' + complete[0])) + 1, `a gap: ${complete.join(' ')}`);
        for (const n of complete) {
          const r = spawnSync(tool, ['-dc', join(dir, n + ext)], { maxBuffer: 64 << 20 });
          assert.equal(r.status, 0, String(r.stderr));
          assert.ok(r.stdout.equals(readFileSync(join(src.dataDir, 'pg_wal', n))), `${n}${ext} does not decompress to the server's ${n}`);
          writeFileSync(join(out, n), r.stdout);
        }
        if (version === 15) {
          const r = await runCommand(join(clientToolDir(), 'pg_waldump'), ['-p', out, '--stats', complete[0]!, last]);
          assert.equal(r.code, 0, r.stderr);
          // A drop-in: pg_receivewal itself takes the directory over where we would resume.
          // (at the .partial segment, or after the newest complete one)
          const partial = readdirSync(dir).find((n) => n.endsWith(`${ext}.partial`));
          const resumeSeg = partial ? BigInt('0x' + partial.slice(8, 24)) : BigInt('0x' + last.slice(8, 24)) + 1n;
          const resumeAt = formatLsn((resumeSeg >> 32n) * 0x100000000n + (resumeSeg & 0xffffffffn) * 0x1000000n);
          const endpos = (await src.sql<{ l: string }>('select pg_current_wal_lsn()::text as l'))[0]!.l;
          const pg = await runCommand(join(clientToolDir(), 'pg_receivewal'), ['-D', dir, '-Z', method, '-n', '-v', '-E', endpos], { env: { ...process.env, ...env }, timeoutMs: 60_000 });
          assert.equal(pg.code, 0, pg.stderr);
          assert.match(pg.stderr, new RegExp(`starting log streaming at ${resumeAt.replace('/', '\\/')} `), pg.stderr);
        }
      });
    }

    await t.test('synchronous mode: a committed transaction is received before COMMIT returns', async () => {
      const dir = src.tempDir('rw-sync');
      await src.sql("alter system set synchronous_standby_names = 'pgpitr_sync'");
      await src.sql('select pg_reload_conf()');
      const rx = startReceiver(['-D', dir, '--synchronous', '-d', 'application_name=pgpitr_sync'], env);
      await until('a synchronous standby', async () => (await src.sql<{ s: string }>("select sync_state as s from pg_stat_replication where application_name = 'pgpitr_sync'"))[0]?.s === 'sync');
      const marker = `pgpitr-sync-marker-${Date.now()}`;
      await src.sql(`create table if not exists sync_t(x text); insert into sync_t values ('${marker}')`);
      await src.stop('immediate');
      assert.equal(await rx.stop(), 0, rx.log());
      const found = readdirSync(dir).some((f) => readFileSync(join(dir, f)).includes(Buffer.from(marker)));
      assert.ok(found, 'the committed row is not in the received WAL');
    });
  });
}

test('receive-wal options: -V, -Z as pg_receivewal reads it', async () => {
  for (const flag of ['-V', '--version']) {
    const r = await runPgpitr(['receive-wal', flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pgpitr receive-wal \(pgpitr\) \d+\.\d+\.\d+/);
  }
  const help = await runPgpitr(['receive-wal', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /-V, --version/);
  assert.match(help.stdout, /-Z, --compress=METHOD\[:DETAIL\]/);
  // Usage errors, each its own process: four at a time.
  await eachOf([
    ['zstd', /zstd is not supported/],
    ['client-gzip', /unrecognized compression algorithm/],
    ['gzip:10', /invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9/],
    ['lz4:level=13', /compression algorithm "lz4" expects a compression level between 1 and 12/],
    ['gzip:workers=2', /worker count/],
    ['none:3', /does not accept/],
    ['brotli', /unrecognized compression algorithm/],
  ] as const, 4, async ([z, why]) => {
    const r = await runPgpitr(['receive-wal', '-D', '/nonexistent-pgpitr', '-Z', z]);
    assert.equal(r.code, 2, `${z}: ${r.stderr}`);
    assert.match(r.stderr, why, z);
  });
  const repo = await runPgpitr(['receive-wal', '--repo', '/nonexistent-pgpitr', '--stanza', 'main', '-Z', 'gzip']);
  assert.equal(repo.code, 2, repo.stderr);
  assert.match(repo.stderr, /repository mode/);
  // Options directory mode would ignore, and a status interval Node's timers cannot hold.
  await eachOf([
    [['--compress-type', 'gzip'], /--compress-type applies in repository mode/],
    [['-s', '2147484'], /invalid status interval "2147484"/],
    [['--repo', '/a', '--repo', '/b', '--stanza', 'main'], /--repo given twice/],
    [['--repo', '/a', '--stanza', 'main', '--no-sync'], /--no-sync cannot be used in repository mode/],
  ] as const, 3, async ([args, why]) => {
    const r = await runPgpitr(['receive-wal', '-D', '/nonexistent-pgpitr', ...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, why);
  });
});
