// Two processes taking over the same stale lock at once: exactly one gets it.
// The storage answers reads late (the content is read at once, handed over
// 20 ms later), so that each newcomer's check "the lock still holds what I
// judged stale" is stale itself by the time it acts on it: without the takeover
// guard the second newcomer removed the lock the first had just taken, and both
// ran. Also: a guard left by a process killed during a takeover is not a wedge.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer as collect } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { RepoLock } from '../../src/repo/lock.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import type { Storage } from '../../src/storage/storage.js';

/** A pid no process has on this host (pids stay below 2^22). */
const DEAD_PID = 2 ** 22 + 4242;

function lateReads(storage: Storage, delayMs: number): Storage {
  return new Proxy(storage, {
    get(target, prop, receiver) {
      if (prop === 'read') {
        return async (path: string, opts?: object) => {
          const s = await target.read(path, opts);
          const data = s === null ? null : await collect(s);
          await sleep(delayMs);
          return data === null ? null : Readable.from([data]);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('lock takeover: two newcomers on one stale lock, one wins', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-takeover-'));
  try {
    const storage = lateReads(new PosixStorage(dir), 20);
    for (let round = 0; round < 5; round++) {
      const stale = JSON.stringify({ pid: DEAD_PID, host: hostname(), command: `dead ${round}` });
      writeFileSync(join(dir, 'backup.lock'), stale);
      const a = RepoLock.acquire(storage, 'backup.lock', 'first');
      await sleep(5 + round * 3);
      const b = RepoLock.acquire(storage, 'backup.lock', 'second');
      const [ra, rb] = await Promise.allSettled([a, b]);
      const won = [ra, rb].filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1, `round ${round}: exactly one newcomer holds the lock (${[ra, rb].map((r) => r.status).join(', ')})`);
      const lost = [ra, rb].find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.match(String(lost.reason), /repository is locked by "(first|second)"/);
      const holder = JSON.parse(readFileSync(join(dir, 'backup.lock'), 'utf8')) as { command: string };
      const winner = (won[0] as PromiseFulfilledResult<RepoLock>).value;
      assert.match(holder.command, /^(first|second)$/);
      assert.equal(existsSync(join(dir, 'backup.lock.takeover.lock')), false, 'the guard is gone');
      await winner.release();
      assert.equal(existsSync(join(dir, 'backup.lock')), false);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lock takeover: a guard left by a dead process does not wedge the lock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-takeover-'));
  try {
    const storage = new PosixStorage(dir);
    writeFileSync(join(dir, 'backup.lock'), JSON.stringify({ pid: DEAD_PID, host: hostname(), command: 'dead' }));
    writeFileSync(join(dir, 'backup.lock.takeover.lock'), JSON.stringify({ pid: DEAD_PID + 1, host: hostname(), command: 'lock takeover' }));
    const lock = await RepoLock.acquire(storage, 'backup.lock', 'newcomer');
    assert.equal((JSON.parse(readFileSync(join(dir, 'backup.lock'), 'utf8')) as { command: string }).command, 'newcomer');
    assert.equal(existsSync(join(dir, 'backup.lock.takeover.lock')), false);
    await lock.release();
    // A live process's guard (this one's) is waited for, and a live lock is still refused after it.
    writeFileSync(join(dir, 'backup.lock'), JSON.stringify({ pid: DEAD_PID, host: hostname(), command: 'dead' }));
    writeFileSync(join(dir, 'backup.lock.takeover.lock'), JSON.stringify({ pid: process.pid, host: hostname(), command: 'lock takeover' }));
    // Its time by the store two minutes behind this host's clock (a host whose clock runs ahead): still its writer's, just written.
    writeFileSync(join(dir, 'backup.lock.takeover.lock'), JSON.stringify({ pid: process.pid, host: hostname(), command: 'lock takeover', at: new Date().toISOString() }));
    const { utimesSync } = await import('node:fs');
    utimesSync(join(dir, 'backup.lock.takeover.lock'), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const waiting = RepoLock.acquire(storage, 'backup.lock', 'patient');
    await sleep(100);
    assert.equal(JSON.parse(readFileSync(join(dir, 'backup.lock'), 'utf8')).command, 'dead', 'nothing removed while the guard is held');
    assert.ok(existsSync(join(dir, 'backup.lock.takeover.lock')), 'a live guard is not taken for old by a clock ahead of the store');
    rmSync(join(dir, 'backup.lock.takeover.lock'));
    await (await waiting).release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});


test('a lock that does not parse (an empty file a power loss left) is refused while young, taken over once over a minute old', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-takeover-'));
  try {
    const storage = new PosixStorage(dir);
    writeFileSync(join(dir, 'backup.lock'), '');
    await assert.rejects(RepoLock.acquire(storage, 'backup.lock', 'newcomer'), /locked by another command/);
    const { utimesSync } = await import('node:fs');
    const old = new Date(Date.now() - 120_000);
    utimesSync(join(dir, 'backup.lock'), old, old);
    const lock = await RepoLock.acquire(storage, 'backup.lock', 'newcomer');
    assert.equal((JSON.parse(readFileSync(join(dir, 'backup.lock'), 'utf8')) as { command: string }).command, 'newcomer');
    await lock.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a spool lock of a holder this host cannot judge (another pid namespace: a container restarted) is stale once untouched for a minute; its live holder keeps touching it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-takeover-'));
  try {
    const storage = new PosixStorage(dir);
    const { utimesSync, statSync } = await import('node:fs');
    const { liveLockHolder, SPOOL_LOCK_STALE_MS } = await import('../../src/repo/lock.js');
    const { runAsOnlyOne } = await import('../../src/archiving/background.js');
    const path = join(dir, 'pusher.lock');
    writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), command: 'archive-push (background pusher)', pid_ns: 'pid:[1]' }));
    const spool = { unjudgedStaleAfterMs: SPOOL_LOCK_STALE_MS };
    assert.ok(await liveLockHolder(storage, 'pusher.lock', spool), 'touched a moment ago: may be alive');
    const old = new Date(Date.now() - 2 * SPOOL_LOCK_STALE_MS);
    utimesSync(path, old, old);
    assert.equal(await liveLockHolder(storage, 'pusher.lock', spool), null);
    assert.ok(await liveLockHolder(storage, 'pusher.lock'), 'a repository lock of such a holder is still taken as alive');
    // A new pusher takes it over, and touches it while it runs.
    let touched = 0;
    const ran = await runAsOnlyOne(dir, 'pusher', 'archive-push (background pusher)', undefined, async () => {
      utimesSync(path, old, old);
      await sleep(200);
      touched = statSync(path).mtimeMs;
    }, 30);
    assert.equal(ran, true);
    assert.ok(Date.now() - touched < 5_000, 'the lock was touched while held');
    assert.equal(existsSync(path), false, 'released');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a spool lock that cannot be written at all (not held by anyone) is an error, not "another process holds it"', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-takeover-'));
  try {
    const { runAsOnlyOne } = await import('../../src/archiving/background.js');
    const notADir = join(dir, 'spool');
    writeFileSync(notADir, 'a file where the spool directory should be');
    let ran = false;
    await assert.rejects(runAsOnlyOne(notADir, 'pusher', 'archive-push (background pusher)', undefined, async () => void (ran = true)), /EEXIST|ENOTDIR|not a directory/);
    assert.equal(ran, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a lock on a full file system: a clear refusal saying what to free, not the write error of a temporary file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lock-full-'));
  try {
    const posix = new PosixStorage(dir);
    const full = new Proxy(posix, {
      get(target, prop, receiver) {
        if (prop === 'write') {
          return async () => {
            const { storageError } = await import('../../src/common/errors.js');
            throw storageError('write', join(dir, 'backup.lock.tmp'), Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    await assert.rejects(RepoLock.acquire(full, 'backup.lock', 'expire', undefined, 'stanza "main"'), (e: { code?: string; message: string; hint?: string }) => {
      assert.equal(e.code, 'ERR_STORAGE');
      assert.match(e.message, /no space left to take the stanza "main" lock backup\.lock in .*: the file system holding it is full/);
      assert.match(e.hint ?? '', /free a little space on that file system \(expire needs a few kilobytes for its lock and records, before it removes anything\)/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
