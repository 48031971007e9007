// A spool directory another user could write, or replace, is refused (archiving/spool-safety.ts):
// markers there decide what archive_command reports archived, and segments there what recovery
// replays. (Ownership is judged for users other than root; the tests run as root.)

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unsafeSpool, unsafeSpoolPlace } from '../../src/archiving/spool-safety.js';
import { openSpoolDir } from '../../src/archiving/spool.js';

test('unsafeSpool: writable by every user, below such a directory without the sticky bit, or a link below the root', () => {
  const top = mkdtempSync(join(tmpdir(), 'pgpitr-spoolsafe-'));
  try {
    chmodSync(top, 0o755);
    const spool = join(top, 'spool');
    const dir = join(spool, 'main', 'archive-push');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    assert.equal(unsafeSpool(spool, dir), null);
    chmodSync(join(spool, 'main'), 0o777);
    assert.match(unsafeSpool(spool, dir) ?? '', /main is writable by every user \(mode 777\)/);
    chmodSync(join(spool, 'main'), 0o750);
    // Above the root: every user may write it, so may put another spool in its place; with the sticky bit (as /tmp) they may not.
    chmodSync(top, 0o777);
    assert.match(unsafeSpool(spool, dir) ?? '', /above it, is writable by every user \(mode 777, without the sticky bit/);
    chmodSync(top, 0o1777);
    assert.equal(unsafeSpool(spool, dir), null);
    chmodSync(top, 0o755);
    // A link below the root (the root itself may be one).
    const elsewhere = join(top, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o750 });
    const linked = join(spool, 'other');
    symlinkSync(elsewhere, linked);
    assert.match(unsafeSpool(spool, join(linked, 'archive-push')) ?? '', /other is not a directory \(a link\?\)/);
    const rootLink = join(top, 'spool-link');
    symlinkSync(spool, rootLink);
    assert.equal(unsafeSpool(rootLink, join(rootLink, 'main', 'archive-push')), null);
    chmodSync(dir, 0o777);
    assert.throws(() => openSpoolDir(spool, dir), /spool directory ".*archive-push" is not safe: .*archive-push is writable by every user/);
    chmodSync(dir, 0o750);
    // Root preparing the server user's spool (uid 4242 here) trusts that user and itself, no other.
    chownSync(spool, 4242, 4242);
    assert.equal(unsafeSpool(spool, dir, [4242]), null);
    chownSync(spool, 4343, 4343);
    assert.match(unsafeSpool(spool, dir, [4242]) ?? '', /spool belongs to another user \(uid 4343/);
    // Before it is made: judged by what is above; a directory above owned by another user could be replaced.
    assert.equal(unsafeSpoolPlace(join(top, 'new', 'spool'), [4242]), null);
    chownSync(top, 4343, 4343);
    assert.match(unsafeSpoolPlace(join(top, 'new', 'spool'), [4242]) ?? '', /above it, belongs to another user \(uid 4343\)/);
    chownSync(top, 0, 0);
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});
