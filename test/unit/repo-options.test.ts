// Command line: repository paths must be absolute (archive_command and
// restore_command run in the data directory, so a relative path would name
// another directory there than in a shell), and mistyped commands are matched.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { parseRepoOptions } from '../../src/cli/repo-options.js';
import { closestCommand } from '../../src/cli/closest-command.js';

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

test('a mistyped command is matched to the closest known one, within two edits and without a tie', () => {
  const commands = ['basebackup', 'archive-push', 'archive-get', 'info', 'check'];
  assert.equal(closestCommand('archive-gte', commands), 'archive-get');
  assert.equal(closestCommand('archiveget', commands), 'archive-get');
  assert.equal(closestCommand('archive_get', commands), 'archive-get');
  assert.equal(closestCommand('infp', commands), 'info');
  assert.equal(closestCommand('archive-put', commands), undefined); // as close to push as to get
  assert.equal(closestCommand('restore', commands), undefined);
});

test('receive-wal refuses a relative repository path too', async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const r = spawnSync(process.execPath, [cli, 'receive-wal', '--repo', 'relative/repo', '--stanza', 'main'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /repository path "relative\/repo" is relative/);
});
