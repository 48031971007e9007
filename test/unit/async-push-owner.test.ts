// A push spool two clusters share (one stanza name, one spool-path on one host): the markers of
// one cluster's pusher never answer the other's archive_command, and the other's call is refused
// while that pusher and its cluster run, instead of the two pushers stopping each other. A pusher
// whose cluster stopped (a failover on one host) is waited for instead: it stores what its server
// left ready, then leaves.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PushSpool } from '../../src/archiving/spool.js';
import { pushThroughSpool } from '../../src/archiving/async-push.js';

const NAME = '000000010000000000000007';

test('archive-push --archive-async: another cluster\'s markers answer nothing; its live pusher makes the call fail, naming it, unless its cluster stopped', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-spool-owner-'));
  try {
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    const ours = join(root, 'b', 'pg_wal');
    mkdirSync(join(root, 'a'), { recursive: true });
    mkdirSync(ours, { recursive: true });
    writeFileSync(join(ours, NAME), 'wal of cluster b');
    spool.recordPgWal(join(root, 'a', 'pg_wal'));
    spool.write(NAME, 'ok');
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(spool.dir, `${NAME}.ok`), later, later);
    let started = 0;
    const call = () => pushThroughSpool({ walPath: join(ours, NAME), pgWal: ours, spool, timeoutMs: 300, startPusher: () => void started++, settings: ['b'], repositories: ['repo1 /r'] });
    // No pusher runs: the other cluster's marker is not an answer (ours is started, and waited for).
    await assert.rejects(call(), /timed out/);
    assert.ok(started > 0);
    // Its pusher runs, and its server (postmaster.pid naming a live process): refused, naming the other cluster's pg_wal.
    const pusher = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const exited = once(pusher, 'exit');
    try {
      writeFileSync(join(spool.dir, 'pusher.lock'), JSON.stringify({ pid: pusher.pid, host: hostname(), command: 'archive-push (background pusher)', settings: ['a'] }));
      writeFileSync(join(root, 'a', 'postmaster.pid'), `${process.pid}\n${join(root, 'a')}\n${Math.floor(Date.now() / 1000)}\n`);
      await assert.rejects(call(), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_USAGE');
        assert.match(e.message, new RegExp(`in use by the pusher \\(pid ${pusher.pid}\\) of another cluster, whose WAL is in ${join(root, 'a', 'pg_wal')}`));
        return true;
      });
      assert.equal(pusher.exitCode, null, 'the other running cluster\'s pusher is left alone');
      // That server stopped (no postmaster.pid beside its PG_VERSION), its pusher still storing what it
      // left ready: waited for (never signalled: nothing else would store those files), not a failure.
      writeFileSync(join(root, 'a', 'PG_VERSION'), '15\n');
      rmSync(join(root, 'a', 'postmaster.pid'));
      started = 0;
      const waiting = pushThroughSpool({ walPath: join(ours, NAME), pgWal: ours, spool, timeoutMs: 2500, startPusher: () => void started++, settings: ['b'], repositories: ['repo1 /r'] });
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal(pusher.exitCode, null, 'the stopped cluster\'s pusher is left to finish');
      assert.equal(started, 0);
      // It leaves (nothing more to store): ours is started at the next look.
      pusher.kill('SIGKILL');
      await exited;
      await assert.rejects(waiting, /timed out/);
      assert.ok(started > 0, 'ours started once the other pusher had gone');
    } finally {
      pusher.kill('SIGKILL');
    }
    // Our own pusher's marker answers.
    rmSync(join(spool.dir, 'pusher.lock'), { force: true });
    spool.recordPgWal(ours);
    assert.deepEqual(await call(), { kind: 'ok' });
    // Written while the spool recorded other repositories (a pusher died, then archive_command got a
    // second repository): not an answer until a pusher with ours has started (and said what holds).
    spool.recordRepositories(['repo1 /r', 'repo2 /s']);
    started = 0;
    await assert.rejects(call(), /timed out/);
    assert.ok(started > 0);
    spool.recordRepositories(['repo1 /r']);
    assert.deepEqual(await call(), { kind: 'ok' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("a pusher claiming a spool another pg_wal's pusher used forgets that one's markers; its own stay", () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-spool-claim-'));
  try {
    const spool = PushSpool.open(join(root, 'spool'), 'main');
    spool.recordPgWal('/a/pg_wal');
    spool.write(NAME, 'ok');
    spool.claimFor('/b/pg_wal');
    assert.equal(spool.pgWalOwner(), '/b/pg_wal');
    assert.equal(spool.list().size, 0, "the other cluster's marker is gone");
    spool.write(NAME, 'ok');
    spool.claimFor('/b/pg_wal');
    assert.equal(spool.list().get(NAME), 'ok', 'claimed again by the same pg_wal: its markers stay');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
