// The prefetch spool restore prepares: the levels above a restore's own spool are passable by any
// server user (a restore run as root into a root-owned directory made them 0750, and every later
// restore's prefetch was kept out without a word); a spool the server's user cannot reach is said.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareSpool } from '../../src/archiving/prefetch-spool.js';

test('prepareSpool: the spool given is made passable; one closed to the server\'s user is said', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (restore gives the spool to the server\'s user)');
  const top = mkdtempSync(join(tmpdir(), 'spool-'));
  try {
    chmodSync(top, 0o755);
    const base = join(top, 'spool');
    // Run as root into a directory root owns: no server user known.
    const rootData = join(top, 'rootdata');
    mkdirSync(rootData);
    assert.equal(prepareSpool(join(base, 'restore-a'), 'main', rootData, base), null);
    assert.equal(statSync(base).mode & 0o777, 0o755);
    // The next restore, into a directory of another user (nobody here): its spool is its own, reachable.
    const userData = join(top, 'userdata');
    mkdirSync(userData);
    chownSync(userData, 65534, 65534);
    assert.equal(prepareSpool(join(base, 'restore-b'), 'main', userData, base), null);
    assert.equal(statSync(join(base, 'restore-b')).uid, 65534);
    // A spool left closed (0750, root's) by an older pgpitr: said.
    chmodSync(base, 0o750);
    const closed = prepareSpool(join(base, 'restore-c'), 'main', userData, base);
    assert.match(closed ?? '', new RegExp(`cannot pass through ${base} to the prefetch spool`));
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});
