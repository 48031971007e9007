// The rule for writing a tree from an untrusted source (storage/confined-dir.ts):
// never through a link, whoever made it, never over something that exists, and
// members under a mount go to the mounted directory, not through the link to it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfinedDir } from '../../src/storage/confined-dir.js';

function setUp(t: { after(fn: () => void): void }) {
  const base = mkdtempSync(join(tmpdir(), 'pgpitr-confined-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'original');
  const intact = () => {
    assert.deepEqual(readdirSync(outside), ['victim']);
    assert.equal(readFileSync(join(outside, 'victim'), 'utf8'), 'original');
  };
  return { root, outside, intact };
}

test('files and directories are made under the root, once', (t) => {
  const { root } = setUp(t);
  const dir = new ConfinedDir(root, 'archive "a"');
  dir.mkdir('base/1', 0o700);
  const fd = dir.createFile('base/1/1259', 0o600);
  writeSync(fd, 'x');
  closeSync(fd);
  assert.equal(readFileSync(join(root, 'base/1/1259'), 'utf8'), 'x');
  dir.mkdir('base/1', 0o700); // an existing directory is fine
  assert.throws(() => dir.createFile('base/1/1259', 0o600), /refusing member "base\/1\/1259" of archive "a": .*already exists/);
  assert.equal(readFileSync(join(root, 'base/1/1259'), 'utf8'), 'x');
});

test('nothing is written through a link that was already on disk', (t) => {
  const { root, outside, intact } = setUp(t);
  symlinkSync(outside, join(root, 'evil'));
  symlinkSync(join(outside, 'victim'), join(root, 'file-link'));
  symlinkSync(join(outside, 'new'), join(root, 'dangling'));
  const dir = new ConfinedDir(root, 'archive "a"');
  assert.throws(() => dir.createFile('evil/victim', 0o600), /"evil" is a symbolic link/);
  assert.throws(() => dir.createFile('evil/sub/new', 0o600), /"evil" is a symbolic link/);
  assert.throws(() => dir.mkdir('evil/sub', 0o700), /"evil" is a symbolic link/);
  assert.throws(() => dir.createFile('file-link', 0o600), /already exists/);
  assert.throws(() => dir.createFile('dangling', 0o600), /already exists/);
  assert.throws(() => dir.symlink('evil', '/elsewhere'), /already exists/);
  assert.equal(readlinkSync(join(root, 'evil')), outside);
  intact();
});

test('a link made by the same stream is not gone through either', (t) => {
  const { root, outside, intact } = setUp(t);
  const dir = new ConfinedDir(root, 'archive "a"');
  dir.symlink('pg_tblspc/16385', outside);
  assert.equal(readlinkSync(join(root, 'pg_tblspc/16385')), outside);
  assert.throws(() => dir.createFile('pg_tblspc/16385/victim', 0o600), /"pg_tblspc\/16385" is a symbolic link/);
  assert.throws(() => dir.mkdir('pg_tblspc/16385', 0o700), /"pg_tblspc\/16385" is a symbolic link/);
  intact();
});

test('members under a mount go to the mounted directory, not through the link', (t) => {
  const { root, outside, intact } = setUp(t);
  const walDir = join(root, '..', 'wal');
  mkdirSync(walDir);
  symlinkSync(walDir, join(root, 'pg_wal'));
  const dir = new ConfinedDir(root, 'archive "base.tar"', new Map([['pg_wal', walDir]]));
  dir.mkdir('pg_wal', 0o700);
  dir.mkdir('pg_wal/archive_status', 0o700);
  closeSync(dir.createFile('pg_wal/000000010000000000000002', 0o600));
  assert.ok(existsSync(join(walDir, 'archive_status')));
  assert.ok(existsSync(join(walDir, '000000010000000000000002')));
  assert.throws(() => dir.createFile('pg_wal', 0o600), /refusing member "pg_wal"/);
  // A link found inside the mounted directory is not gone through either.
  symlinkSync(outside, join(walDir, 'evil'));
  assert.throws(() => dir.createFile('pg_wal/evil/victim', 0o600), /"pg_wal\/evil" is a symbolic link/);
  intact();
});

test("members get exactly their header's mode, whatever the umask (as pg_basebackup chmods them)", (t) => {
  const { root } = setUp(t);
  const walDir = join(root, '..', 'wal');
  mkdirSync(walDir, 0o755);
  symlinkSync(walDir, join(root, 'pg_wal'));
  // A backup runs with the source cluster's umask (pg_mode_mask): 077 without group access.
  const umask = process.umask(0o077);
  t.after(() => process.umask(umask));
  const modeOf = (rel: string) => lstatSync(join(root, rel)).mode & 0o777;
  const dir = new ConfinedDir(root, 'archive "base.tar"', new Map([['pg_wal', walDir]]));
  dir.mkdir('global', 0o755);
  closeSync(dir.createFile('pg_hba.conf', 0o644));
  closeSync(dir.createFile('postgresql.conf', 0o640));
  assert.equal(modeOf('global'), 0o755);
  assert.equal(modeOf('pg_hba.conf'), 0o644);
  assert.equal(modeOf('postgresql.conf'), 0o640);
  // A directory made before its own member came (a parent of an earlier one, pg_wal made by the
  // WAL stream) takes the member's mode when it comes.
  closeSync(dir.createFile('base/1/1259', 0o600));
  assert.equal(modeOf('base'), 0o700);
  dir.mkdir('base', 0o750);
  assert.equal(modeOf('base'), 0o750);
  // A mount: the directory its link points at, as pg_basebackup's chmod through pg_wal.
  dir.mkdir('pg_wal', 0o700);
  assert.equal(lstatSync(walDir).mode & 0o777, 0o700);
  assert.ok(lstatSync(join(root, 'pg_wal')).isSymbolicLink());
});
