// The exit codes of pgpitr's entry point before any command runs: in restore_command, every way of
// calling archive-get wrongly must stop recovery (200), never read as "not in the archive" (1) or
// as a usage error (2, which PostgreSQL also reads as "not found" and ends recovery).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, PGPITR_CONFIG: '' } });

test('archive-get called wrongly in restore_command stops recovery (200): options before the command, a mistyped command', () => {
  const before = run('--stanza', 'main', 'archive-get', '000000010000000000000001', 'pg_wal/RECOVERYXLOG');
  assert.equal(before.status, 200, before.stderr);
  assert.match(before.stderr, /options come after the command/);
  assert.equal(run('archive-gte', '000000010000000000000001', 'pg_wal/RECOVERYXLOG').status, 200);
  // Other commands: a usage error.
  assert.equal(run('--stanza', 'main', 'backup').status, 2);
});

test('receive-wal with several repositories configured and none chosen says it stores into the first only', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-rw-repos-'));
  const config = join(dir, 'pgpitr.conf');
  writeFileSync(config, `[global]\nrepo1-path=${join(dir, 'r1')}\nrepo2-path=${join(dir, 'r2')}\n`);
  // No repository there: the command stops after the warning (no server is asked anything).
  const r = spawnSync(process.execPath, [CLI, 'receive-wal', '--config', config, '--stanza', 'main'], { encoding: 'utf8', env: { ...process.env, PGPITR_CONFIG: '' } });
  (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  assert.notEqual(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: receive-wal stores into repo1 only, and 2 repositories are configured \(repo1, repo2\): the others get no WAL from it/);
});

test('verify --set naming no backup exits 6 (the named object does not exist), not 7', async () => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createStanza } = await import('../../src/repo/stanza.js');
  const { repositoryOn } = await import('../../src/repo/repository.js');
  const { PosixStorage } = await import('../../src/storage/posix/posix-storage.js');
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-verify-set-'));
  await createStanza(repositoryOn(new PosixStorage(dir), dir), { stanza: 'main', system_identifier: '7300000000000000001', pg_major: 16, wal_segment_size: 16 * 1024 * 1024 });
  const r = run('verify', '--repo', dir, '--stanza', 'main', '--set', '20261201-000000F');
  (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 6, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /verify: no complete backup 20261201-000000F in stanza "main": nothing verified/);
});

test('too many open files (a low ulimit -n): exit 5 with a hint to raise the limit, not 1 (a bug)', () => {
  const r = spawnSync('/bin/sh', ['-c', `ulimit -n 24 && exec "${process.execPath}" "${CLI}" verify --repo /nonexistent --stanza main`], { encoding: 'utf8', env: { ...process.env, PGPITR_CONFIG: '' } });
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /EMFILE: too many open files/);
  assert.match(r.stderr, /hint: too many open files: raise the open-file limit of the process \(ulimit -n 1024 or more/);
});

test('an argument that is not valid UTF-8 (read by Node as U+FFFD) is refused before the command runs: usage (2), and for archive-get 200 (black-box run X)', () => {
  // What Node makes of a Latin-1 byte in argv (a shell would pass $'\xe9'): the replacement character.
  const restore = run('restore', '--repo', '/nonexistent', '--stanza', 'main', '-D', '/tmp/d\uFFFDlta', '--dry-run');
  assert.equal(restore.status, 2);
  assert.match(restore.stderr, /argument "\/tmp\/d\uFFFDlta" is not valid UTF-8/);
  const get = run('archive-get', '--repo', '/nonexistent', '--stanza', 'main', '00000001000000000000000\uFFFD', 'pg_wal/RECOVERYXLOG');
  assert.equal(get.status, 200);
});
