// Where restore may write a tablespace (restore-target-dir.ts checkTablespaceDir) and the
// mappings it accepts: a file system's lost+found at a mount point's root is no obstacle; a
// delta recognises its own tablespace however its link is spelt; a delta with no mapping over
// a cluster whose tablespace was moved since the backup is refused, naming both places; a
// tablespace mapped twice, or --tablespace-map-all relative, is a usage error.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTablespaceDir, refuseInsideRepository, tablespaceLeftBehind } from '../../src/restore/restore-target-dir.js';

const OWN = 'PG_16_202307071';

function withDirs(fn: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-tsdir-'));
  try {
    fn(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a tablespace directory holding lost+found (a mount point) is accepted; anything else that is not PG_* is refused', () => {
  withDirs((root) => {
    const ts = join(root, 'mnt');
    mkdirSync(join(ts, 'lost+found'), { recursive: true });
    checkTablespaceDir(ts, 16400, false, OWN, join(root, 'data', 'pg_tblspc', '16400'));
    writeFileSync(join(ts, 'notes.txt'), 'x');
    assert.throws(() => checkTablespaceDir(ts, 16400, false, OWN, join(root, 'data', 'pg_tblspc', '16400')), /tablespace 16400's directory ".*mnt" exists and is not empty: it holds "notes.txt", which no tablespace holds/);
    // The same in a delta over the cluster's own tablespace: the file named, to be moved aside (never "empty that directory").
    mkdirSync(join(ts, OWN));
    assert.throws(
      () => checkTablespaceDir(ts, 16400, true, OWN, join(root, 'data', 'pg_tblspc', '16400')),
      (e: Error & { hint?: string }) => /"notes\.txt"/.test(e.message) && /move them aside/.test(e.hint ?? '') && !/empty that directory/.test(e.hint ?? ''),
    );
  });
});

test('a delta recognises its own tablespace through a link spelt with a trailing slash; another cluster\'s is refused', () => {
  withDirs((root) => {
    const ts = join(root, 'ts');
    mkdirSync(join(ts, OWN), { recursive: true });
    mkdirSync(join(root, 'data', 'pg_tblspc'), { recursive: true });
    const link = join(root, 'data', 'pg_tblspc', '16400');
    symlinkSync(`${ts}/`, link);
    checkTablespaceDir(ts, 16400, true, OWN, link);
    assert.throws(() => checkTablespaceDir(ts, 16400, true, OWN, join(root, 'data', 'pg_tblspc', '16401')), /holds PG_16_202307071, and .*pg_tblspc\/16401 is missing: restore cannot tell/);
    const elsewhere = join(root, 'data', 'pg_tblspc', '16402');
    symlinkSync(join(root, 'other'), elsewhere);
    assert.throws(() => checkTablespaceDir(ts, 16400, true, OWN, elsewhere), /holds PG_16_202307071 of another cluster/);
  });
});

test('a delta with no mapping over a cluster whose tablespace moved since the backup is refused, naming both places', () => {
  withDirs((root) => {
    const old = join(root, 'old');
    const now = join(root, 'now');
    mkdirSync(join(now, OWN), { recursive: true });
    mkdirSync(join(root, 'data', 'pg_tblspc'), { recursive: true });
    const link = join(root, 'data', 'pg_tblspc', '16400');
    symlinkSync(now, link);
    assert.throws(
      () => checkTablespaceDir(old, 16400, true, OWN, link, false),
      (e: Error & { hint?: string }) => /tablespace 16400 of the cluster in the target is at ".*now"/.test(e.message) && e.hint!.includes(`--tablespace-map 16400=${now}`),
    );
    // Mapped (where it is now, or back), or not a delta: as before.
    checkTablespaceDir(now, 16400, true, OWN, link, true);
    checkTablespaceDir(old, 16400, true, OWN, link, true);
    // Moved back by the map: where it is now keeps its version directory, said (tablespaceLeftBehind).
    assert.equal(tablespaceLeftBehind(old, OWN, link), now);
    assert.equal(tablespaceLeftBehind(now, OWN, link), null, 'where the link leads already');
    assert.equal(tablespaceLeftBehind(old, 'PG_17_202406281', link), null, 'nothing of this version there');
    assert.equal(tablespaceLeftBehind(old, OWN, join(root, 'data', 'pg_tblspc', '16401')), null, 'no link');
  });
});

test('restore: a tablespace mapped twice, or --tablespace-map-all relative, is a usage error', () => {
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  for (const [args, why] of [
    [['--tablespace-map', '16400=/a', '--tablespace-map', '16400=/b'], /--tablespace-map names tablespace 16400 twice/],
    [['--tablespace-map-all', 'rel/ts'], /--tablespace-map-all path "rel\/ts" is relative/],
  ] as const) {
    const r = spawnSync(process.execPath, [cli, 'restore', '--repo', '/nonexistent-pgpitr', '--stanza', 'main', '-D', '/nonexistent-pgpitr-d', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, why);
  }
});

test('restore writes nowhere in a local repository: the data directory, a tablespace or the WAL directory inside one, or holding one, is refused', () => {
  withDirs((root) => {
    const repo = join(root, 'repo');
    mkdirSync(join(repo, 'main', 'archive'), { recursive: true });
    refuseInsideRepository([['the data directory', join(root, 'data')]], [repo]);
    assert.throws(() => refuseInsideRepository([['the data directory', join(repo, 'main', 'backup', 'x')]], [repo]), /the data directory ".*backup\/x" is inside the repository/);
    assert.throws(() => refuseInsideRepository([['tablespace 16384\'s directory', join(repo, 'main', 'archive', 'evil')]], [repo]), /tablespace 16384's directory .* is inside the repository/);
    assert.throws(() => refuseInsideRepository([['the WAL directory', root]], [repo]), /the WAL directory ".*" holds the repository/);
  });
});
