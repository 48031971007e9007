// Options of the repository commands: paths must be absolute, because
// archive_command and restore_command run in the data directory and a relative
// path would name another directory there than in a shell.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { parseRepoOptions } from '../../src/cli/repo-options.js';

test('relative repository, spool and configuration paths are refused, from flags and from the environment', () => {
  const ok = parseRepoOptions('archive-push', ['--repo', '/var/lib/pgpitr/', '--stanza', 'main', 'x'], {}, {});
  assert.equal(ok.repo, '/var/lib/pgpitr');
  for (const [argv, env, what] of [
    [['--repo', 'backups', '--stanza', 'main'], {}, /repository path "backups" is relative/],
    [['--repo', './backups', '--stanza', 'main'], {}, /repository path "\.\/backups" is relative/],
    [['--stanza', 'main'], { PGPITR_REPO: '../repo' }, /repository path "\.\.\/repo" is relative/],
    [['--repo', '/r', '--stanza', 'main', '--spool-path', 'spool'], {}, /spool path "spool" is relative/],
    [['--repo', '/r', '--stanza', 'main', '--config', 'pgpitr.conf'], {}, /configuration file path "pgpitr.conf" is relative/],
  ] as [string[], NodeJS.ProcessEnv, RegExp][]) {
    assert.throws(() => parseRepoOptions('archive-push', argv, {}, env), (e: Error & { code?: string; hint?: string }) => {
      assert.match(e.message, what);
      assert.equal(e.code, 'ERR_USAGE');
      assert.match(e.hint ?? '', /give an absolute path .*archive_command and restore_command run in the data directory/);
      return true;
    });
  }
});
