// bin/pgpitr-spool-wait, the shell side of asynchronous archive-push: it answers
// "stored" (0) from a marker only while its pusher runs and when the marker is
// newer than the WAL file's last change, and fails closed (1: pgpitr archive-push then judges) when it
// cannot tell: the WAL file or the marker gone, or a marker older than the file.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/unit/ -> the repository's root.
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'pgpitr-spool-wait');
const NAME = '000000010000000000000007';

test('pgpitr-spool-wait: a marker counts only when newer than the WAL file, and nothing it cannot check counts', () => {
  const data = mkdtempSync(join(tmpdir(), 'pgpitr-spool-wait-'));
  try {
    const spool = join(data, 'spool');
    mkdirSync(spool);
    mkdirSync(join(data, 'pg_wal'));
    // A running pusher (this process behind the lock); without a marker that counts, 1 (after the wait of 1 s).
    writeFileSync(join(spool, 'pusher.lock'), JSON.stringify({ pid: process.pid }));
    const run = () => spawnSync('/bin/sh', [SCRIPT, spool, NAME, '1'], { cwd: data }).status;
    writeFileSync(join(spool, `${NAME}.ok`), '');
    assert.equal(run(), 1, 'no WAL file to compare with');
    writeFileSync(join(data, 'pg_wal', NAME), 'wal');
    const old = new Date(Date.now() - 3600_000);
    utimesSync(join(spool, `${NAME}.ok`), old, old);
    assert.equal(run(), 1, 'a marker older than the file is about an earlier file of that name');
    // A marker written after the file changed (ctime is now; the marker's mtime a minute ahead).
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(spool, `${NAME}.ok`), later, later);
    assert.equal(run(), 0);
    // The same marker, its pusher gone (a crash; archive_command may name other repositories since):
    // pgpitr archive-push judges it (it compares the repositories), 1 at once.
    writeFileSync(join(spool, 'pusher.lock'), JSON.stringify({ pid: 2 ** 22 + 1 }));
    assert.equal(run(), 1);
    rmSync(join(spool, 'pusher.lock'));
    assert.equal(run(), 1);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});

test('pgpitr-spool-wait: markers of another cluster\'s pusher (a spool two clusters share) answer nothing', async () => {
  const { realpathSync } = await import('node:fs');
  const data = mkdtempSync(join(tmpdir(), 'pgpitr-spool-wait-'));
  try {
    const spool = join(data, 'spool');
    mkdirSync(spool);
    mkdirSync(join(data, 'pg_wal'));
    writeFileSync(join(data, 'pg_wal', NAME), 'wal');
    writeFileSync(join(spool, `${NAME}.ok`), '');
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(spool, `${NAME}.ok`), later, later);
    const run = () => spawnSync('/bin/sh', [SCRIPT, spool, NAME, '1'], { cwd: data }).status;
    writeFileSync(join(spool, 'pusher.lock'), JSON.stringify({ pid: process.pid }));
    writeFileSync(join(spool, 'pusher.pgwal'), '/var/lib/postgresql/16/main/pg_wal\n');
    assert.equal(run(), 1, 'the marker is the other cluster\'s');
    writeFileSync(join(spool, 'pusher.pgwal'), `${realpathSync(data)}/pg_wal\n`);
    assert.equal(run(), 0);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
