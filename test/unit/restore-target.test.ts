// What restore checks and holds in its target besides the files: a server in
// single-user mode (postmaster.pid with a negated pid) or an unreadable
// postmaster.pid refuses the target; two restores into one directory never run
// at once; run as root, ownership changes only what restore wrote outside the
// data directory.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTarget, inspectTarget, overlaps, recheckTarget, tablespaceMapByOid } from '../../src/restore/restore-target-dir.js';
import { chownOutside, lockTarget } from '../../src/restore/target-owner.js';

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'pgpitr-restore-target-'));
}

test('postmaster.pid: a single-user server (negated pid), an unreadable file and a pid not alive here of a server started since boot refuse the target; a server of an earlier boot does not', () => {
  const dir = scratch();
  try {
    writeFileSync(join(dir, 'PG_VERSION'), '16\n');
    writeFileSync(join(dir, 'postmaster.pid'), `-${process.pid}\n${dir}\n`);
    assert.throws(() => checkTarget(inspectTarget(dir), true), new RegExp(`a PostgreSQL server \\(pid ${process.pid}\\) is running`));
    writeFileSync(join(dir, 'postmaster.pid'), '');
    assert.throws(() => checkTarget(inspectTarget(dir), true), /postmaster\.pid" cannot be read or names no process/);
    // Not alive here, started since this machine did (or when is unknown): maybe in another container or on another host sharing the directory.
    const dead = 2 ** 22 + 777;
    writeFileSync(join(dir, 'postmaster.pid'), `${dead}\n${dir}\n${Math.floor(Date.now() / 1000) - 1}\n5432\n`);
    assert.throws(() => checkTarget(inspectTarget(dir), true), new RegExp(`names pid ${dead}, which is not running here, of a server started since this machine did`));
    writeFileSync(join(dir, 'postmaster.pid'), `${dead}\n${dir}\n`);
    assert.throws(() => checkTarget(inspectTarget(dir), true), /not running here/);
    // Started before this machine did (a crash, then a reboot): gone.
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))![1]);
    writeFileSync(join(dir, 'postmaster.pid'), `${dead}\n${dir}\n${boot - 60}\n5432\n`);
    assert.equal(checkTarget(inspectTarget(dir), true), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('looked at again under the lock: a target another restore wrote while this one planned is refused', () => {
  const dir = scratch();
  try {
    // Planned on an empty directory (no --delta); another restore then finished there.
    const empty = inspectTarget(dir);
    const delta = checkTarget(empty, false);
    mkdirSync(join(dir, 'global'));
    writeFileSync(join(dir, 'PG_VERSION'), '16\n');
    writeFileSync(join(dir, 'global', 'pg_control'), Buffer.alloc(8192));
    assert.throws(() => recheckTarget(empty, delta, false, undefined), /exists and is not empty/);
    // Planned as the resumption of an interrupted restore, which another run has finished since (pg_control is there).
    rmSync(join(dir, 'global', 'pg_control'));
    writeFileSync(join(dir, 'pgpitr_restore.inprogress'), '');
    const interrupted = inspectTarget(dir);
    assert.equal(interrupted.interruptedRestore, true);
    const resumes = checkTarget(interrupted, true);
    recheckTarget(interrupted, resumes, true, undefined);
    writeFileSync(join(dir, 'global', 'pg_control'), Buffer.alloc(8192));
    assert.throws(() => recheckTarget(interrupted, resumes, true, undefined), /changed while this restore planned/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two restores into one directory: the second is refused while the first holds it', async () => {
  const dir = scratch();
  try {
    const first = await lockTarget(dir);
    await assert.rejects(() => lockTarget(dir), /another restore is writing into ".*": data directory ".*" is locked by "restore" \(pid \d+/);
    await first.release();
    await (await lockTarget(dir)).release();
    // A restore killed while it took the lock (before its marker) left only lock files: still an empty target.
    writeFileSync(join(dir, 'pgpitr_restore.lock'), JSON.stringify({ pid: 2 ** 22 + 5, host: 'h', command: 'restore' }));
    writeFileSync(join(dir, 'pgpitr_restore.lock.tmp-h-5-1'), '{');
    assert.equal(inspectTarget(dir).empty, true);
    assert.equal(checkTarget(inspectTarget(dir), false), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run as root: what restore wrote outside the data directory changes owner, nothing else there', { skip: process.getuid?.() !== 0 ? 'not root' : false }, () => {
  const dir = scratch();
  try {
    const wal = join(dir, 'wal');
    const ts = join(dir, 'ts');
    mkdirSync(join(wal, 'archive_status'), { recursive: true });
    writeFileSync(join(wal, '000000010000000000000003'), '');
    writeFileSync(join(wal, 'notes.txt'), '');
    mkdirSync(join(ts, 'PG_16_202307071', '5'), { recursive: true });
    mkdirSync(join(ts, 'PG_13_202007201'), { recursive: true });
    const o = { uid: 12345, gid: 12345 };
    chownOutside(o, wal, [{ path: ts, versionDir: 'PG_16_202307071' }]);
    const uid = (p: string) => statSync(p).uid;
    assert.equal(uid(wal), 12345);
    assert.equal(uid(join(wal, '000000010000000000000003')), 12345);
    assert.equal(uid(join(wal, 'archive_status')), 12345);
    assert.equal(uid(join(wal, 'notes.txt')), 0);
    assert.equal(uid(ts), 12345);
    assert.equal(uid(join(ts, 'PG_16_202307071', '5')), 12345);
    assert.equal(uid(join(ts, 'PG_13_202007201')), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a tablespace or WAL directory reached through a link overlaps the data directory it leads into', () => {
  const dir = scratch();
  try {
    const data = join(dir, 'data');
    mkdirSync(data);
    symlinkSync(data, join(dir, 'link'));
    assert.equal(overlaps(join(dir, 'link', 'ts'), data), true, 'a directory not made yet, under a link into the data directory');
    assert.equal(overlaps(data, join(dir, 'link')), true);
    assert.equal(overlaps(join(dir, 'elsewhere', 'ts'), data), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restore marker left beside pg_control (killed after its last file) is a cluster: --delta required, never silently rewritten', () => {
  const dir = scratch();
  try {
    writeFileSync(join(dir, 'PG_VERSION'), '16\n');
    writeFileSync(join(dir, 'pgpitr_restore.inprogress'), '{}');
    assert.equal(inspectTarget(dir).interruptedRestore, true);
    assert.equal(checkTarget(inspectTarget(dir), false), true); // no pg_control yet: resumed as a delta
    mkdirSync(join(dir, 'global'));
    writeFileSync(join(dir, 'global', 'pg_control'), 'x');
    assert.equal(inspectTarget(dir).interruptedRestore, false);
    assert.throws(() => checkTarget(inspectTarget(dir), false), /holds a restore that wrote pg_control, its last file/);
    assert.equal(checkTarget(inspectTarget(dir), true), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a configuration file restore edits after the copy is never read through a link (swapped in while a root restore ran)', async () => {
  const { readOwnTargetFile } = await import('../../src/restore/target-files.js');
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-own-'));
  try {
    writeFileSync(join(dir, 'secret'), 'root only\n');
    writeFileSync(join(dir, 'postgresql.conf'), "port = 5432\n");
    symlinkSync(join(dir, 'secret'), join(dir, 'postgresql.auto.conf'));
    assert.equal(readOwnTargetFile(join(dir, 'postgresql.conf')), 'port = 5432\n');
    assert.equal(readOwnTargetFile(join(dir, 'none.conf')), null);
    assert.throws(() => readOwnTargetFile(join(dir, 'postgresql.auto.conf')), (e: Error & { code?: string }) => e.code === 'ERR_TARGET' && /became a symbolic link while the restore ran/.test(e.message));
    mkdirSync(join(dir, 'adir'));
    assert.throws(() => readOwnTargetFile(join(dir, 'adir')), /is not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chownTree (run as root): the tree is given away through the directories opened; a link is never followed, a replaced top refused', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const { chownTree } = await import('../../src/restore/target-owner.js');
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-chown-'));
  try {
    const victim = join(root, 'etc');
    mkdirSync(victim);
    writeFileSync(join(victim, 'shadow'), 'x');
    const tree = join(root, 'data');
    mkdirSync(join(tree, 'base', '1'), { recursive: true });
    writeFileSync(join(tree, 'base', '1', '1259'), 'x');
    symlinkSync(victim, join(tree, 'link'));
    const o = { uid: 4321, gid: 4321 };
    const held = statSync(tree);
    chownTree(tree, o, { follow: true, expect: { dev: held.dev, ino: held.ino } });
    for (const p of [tree, join(tree, 'base'), join(tree, 'base', '1', '1259')]) assert.equal(statSync(p).uid, 4321, p);
    assert.equal(statSync(join(victim, 'shadow')).uid, 0);
    assert.equal(statSync(victim).uid, 0);
    // The top replaced by a link to elsewhere: refused, nothing given away there.
    const moved = `${tree}.old`;
    renameSync(tree, moved);
    symlinkSync(victim, tree);
    assert.throws(() => chownTree(tree, o, { follow: true, expect: { dev: held.dev, ino: held.ino } }), /is no longer the directory this restore wrote/);
    // A directory restore made (a tablespace's version directory) that became a link: refused.
    assert.throws(() => chownTree(tree, o, { follow: false }), /give to the server's user/);
    assert.equal(statSync(victim).uid, 0);
    assert.equal(statSync(join(victim, 'shadow')).uid, 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--tablespace-map by name or oid: names as the backup recorded them; unknown keys and a tablespace given twice refused', () => {
  const held = [{ oid: 16384 }, { oid: 16390 }];
  const names = [{ oid: 16384, name: 'fast' }, { oid: 16390, name: '12345' }];
  assert.deepEqual(tablespaceMapByOid([{ key: 'fast', path: '/a' }, { key: '16390', path: '/b' }], held, names, 'B'), [{ key: '16384', path: '/a' }, { key: '16390', path: '/b' }]);
  // Digits that are no oid of the backup: a name.
  assert.deepEqual(tablespaceMapByOid([{ key: '12345', path: '/c' }], held, names, 'B'), [{ key: '16390', path: '/c' }]);
  assert.throws(() => tablespaceMapByOid([{ key: 'slow', path: '/a' }], held, names, 'B'), /names tablespace "slow", which backup B does not hold/);
  assert.throws(() => tablespaceMapByOid([{ key: 'fast', path: '/a' }], held, undefined, 'B'), (e: Error & { hint?: string }) => /predates tablespace names: give oids/.test(e.hint ?? ''));
  assert.throws(() => tablespaceMapByOid([{ key: 'fast', path: '/a' }, { key: '16384', path: '/b' }], held, names, 'B'), /gives tablespace 16384 twice/);
});

test('a restore stopped after it wrote pg_control (its marker or lock still there) is named as such without --delta, and --delta goes over it as over a cluster', () => {
  const dir = scratch();
  try {
    writeFileSync(join(dir, 'PG_VERSION'), '16\n');
    mkdirSync(join(dir, 'global'));
    writeFileSync(join(dir, 'global', 'pg_control'), Buffer.alloc(8192));
    writeFileSync(join(dir, 'pgpitr_restore.lock'), '{}');
    assert.throws(() => checkTarget(inspectTarget(dir), false), /holds a restore that wrote pg_control, its last file, and was stopped before it removed/);
    assert.equal(checkTarget(inspectTarget(dir), true), true);
    rmSync(join(dir, 'pgpitr_restore.lock'));
    assert.throws(() => checkTarget(inspectTarget(dir), false), /exists and is not empty/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
