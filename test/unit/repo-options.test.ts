// Command line: repository paths must be absolute (archive_command and
// restore_command run in the data directory, so a relative path would name
// another directory there than in a shell), and mistyped commands are matched.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { refuseDeleteFromSeveral } from '../../src/cli/commands/stanza-delete.js';
import { parseRepoOptions } from '../../src/cli/repo-options.js';
import { closestCommand } from '../../src/cli/closest-command.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_KEYS, REPO_KEYS, parseConfig } from '../../src/common/config-file.js';

test('relative repository, spool and configuration paths are refused, from flags and from the environment', () => {
  const ok = parseRepoOptions('archive-push', ['--repo', '/var/lib/pgpitr/', '--stanza', 'main', 'x'], {}, {});
  assert.equal(ok.repos[0]?.path, '/var/lib/pgpitr');
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

test('every setting a command reads from the configuration file is accepted there, and is used', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-conf-'));
  try {
    const conf = join(dir, 'pgpitr.conf');
    writeFileSync(conf, '[global]\nrepo=/r\narchive-async=y\nspool-path=/s\nprocess-max=3\narchive-push-queue-max=1GB\narchive-get-queue-max=64MB\n[main]\nretention-full=2\n');
    const o = parseRepoOptions('archive-push', ['--config', conf, '--stanza', 'main', 'x'], {}, {});
    assert.equal(o.archiveAsync, true);
    assert.equal(o.spoolPath, '/s');
    assert.equal(o.processMax, 3);
    assert.equal(o.processMaxGiven, true); // restore takes it instead of its default (every core)
    assert.equal(parseRepoOptions('archive-push', ['--repo', '/r', '--stanza', 'main', 'x'], {}, {}).processMaxGiven, false);
    assert.equal(o.queueMaxBytes, 1024 ** 3);
    assert.equal(o.getQueueMaxBytes, 64 * 1024 ** 2);
    assert.equal(o.configValue('retention-full'), '2');
    // Every key the sources read from the file (get / configValue with a literal) is known to the parser.
    const src = join(new URL('../../src', import.meta.url).pathname);
    const read = new Set<string>();
    const walk = (d: string) => {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (statSync(p).isDirectory()) walk(p);
        else if (n.endsWith('.js')) for (const m of readFileSync(p, 'utf8').matchAll(/(?:(?<![.\w])get|configValue)\((?:config, [\w |]+, )?'([a-z0-9-]+)'/g)) read.add(m[1]!);
      }
    };
    walk(src);
    assert.ok(read.size >= 10, `found ${read.size} keys read`);
    for (const k of read) assert.ok(CONFIG_KEYS.has(k) || REPO_KEYS.has(k), `"${k}" is read from the configuration file but refused by its parser`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('archive-push-queue-max below one WAL segment is refused: "16" is 16 bytes, and every waiting segment would be dropped', () => {
  for (const bad of ['0', '16', '1MB', '16000kB']) {
    assert.throws(() => parseRepoOptions('archive-push', ['--repo', '/r', '--stanza', 'main', '--archive-push-queue-max', bad, 'x'], {}, {}), /below one WAL segment, every segment that waits would be dropped/, bad);
  }
  assert.equal(parseRepoOptions('archive-push', ['--repo', '/r', '--stanza', 'main', '--archive-push-queue-max', '16MB', 'x'], {}, {}).queueMaxBytes, 16 * 1024 ** 2);
});


test('stanza-delete --force with several repositories configured needs --repo N: one repository at a time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-conf-'));
  try {
    const conf = join(dir, 'pgpitr.conf');
    writeFileSync(conf, '[global]\nrepo2-path=/r2\n');
    const o = parseRepoOptions('stanza-delete', ['--config', conf, '--repo', '/tmp/test', '--stanza', 'main'], {}, {});
    assert.throws(() => refuseDeleteFromSeveral(o, ['--repo', '/tmp/test']), /--repo \/tmp\/test names repository 1, but repo2 is configured too: stanza-delete --force deletes a stanza from one repository at a time/);
    assert.doesNotThrow(() => refuseDeleteFromSeveral(parseRepoOptions('stanza-delete', ['--repo', '/tmp/test', '--stanza', 'main'], {}, {}), ['--repo', '/tmp/test']));
    // The same through PGPITR_REPO.
    const env = { PGPITR_REPO: '/tmp/test' };
    const viaEnv = parseRepoOptions('stanza-delete', ['--config', conf, '--stanza', 'main'], {}, env);
    assert.throws(() => refuseDeleteFromSeveral(viaEnv, ['--config', conf, '--stanza', 'main'], env), /PGPITR_REPO=\/tmp\/test names repository 1, but repo2 is configured too/);
    assert.doesNotThrow(() => refuseDeleteFromSeveral(parseRepoOptions('stanza-delete', ['--config', conf, '--stanza', 'main', '--repo', '2'], {}, env), ['--repo', '2'], env));
    // The configuration file alone, repositories 1 and 2: neither is deleted without --repo N.
    writeFileSync(conf, '[global]\nrepo1-path=/r1\nrepo2-path=/r2\n');
    const both = parseRepoOptions('stanza-delete', ['--config', conf, '--stanza', 'main'], {}, {});
    assert.throws(() => refuseDeleteFromSeveral(both, ['--config', conf, '--stanza', 'main'], {}), /2 repositories are configured \(repo1, repo2\): stanza-delete --force deletes a stanza from one repository at a time/);
    assert.doesNotThrow(() => refuseDeleteFromSeveral(parseRepoOptions('stanza-delete', ['--config', conf, '--stanza', 'main', '--repo', '1'], {}, {}), ['--repo', '1'], {}));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check shows archive_command with every secret hidden: environment assignments and options, in any case', async () => {
  const { hideSecrets } = await import('../../src/commands/check.js');
  const shown = hideSecrets("PGPITR_REPO1_CIPHER_PASS=sekret1 AWS_SECRET_ACCESS_KEY='sekret2' wrapper --repo1-cipher-pass=sekret3 --repo1-s3-key-secret sekret4 --token=\"sekret5\" --stanza main %p");
  assert.doesNotMatch(shown, /sekret/, shown);
  assert.match(shown, /--stanza main %p$/);
  // In URLs too (a wrapper's upload, a connection URI), a password holding '/' included.
  const urls = hideSecrets("curl -T %p https://user:sek/ret6@host/wal/%f && psql 'postgresql://u:sekret7@h/db' -c x");
  assert.doesNotMatch(urls, /sek/, urls);
  assert.match(urls, /https:\/\/user:\*\*\*@host\/wal\/%f/, urls);
});

test('a value option given twice is refused (the last one alone was used); --config empty is refused', () => {
  for (const [args, why] of [
    [['--repo', '/a', '--repo', '/b', '--stanza', 'main'], /--repo given twice/],
    [['--repo', '/a', '--stanza', 'main', '--stanza=other'], /--stanza given twice/],
    [['--repo', '/a', '--stanza', 'main', '--config', ''], /--config is empty/],
  ] as const) {
    assert.throws(() => parseRepoOptions('check', [...args], {}, {}), (e: Error) => why.test(e.message), args.join(' '));
  }
});

test('configuration file: a value in quotes is refused (they would be part of the path), a secret may hold them (black-box run X)', () => {
  assert.throws(() => parseConfig('[global]\nrepo1-path="/x y"\n', '/etc/pgpitr.conf'), /\/etc\/pgpitr.conf:2: the value of "repo1-path" is in quotes, which would be kept as part of it/);
  assert.throws(() => parseConfig("[global]\nspool-path='/s'\n", '/etc/pgpitr.conf'), /is in quotes/);
  assert.equal(parseConfig('[global]\nrepo1-path=/x y\n', 'f').get('global')?.get('repo1-path'), '/x y');
  assert.equal(parseConfig('[global]\nrepo1-cipher-pass="p"\n', 'f').get('global')?.get('repo1-cipher-pass'), '"p"');
});
