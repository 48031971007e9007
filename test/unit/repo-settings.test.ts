// Repositories from flags, environment and configuration file (repoN-*, as
// pgBackRest names them), the legacy --repo PATH, secrets kept off the command
// line, and how restore_command reaches the same repositories.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseRepoOptions } from '../../src/cli/repo-options.js';
import { parseConfig } from '../../src/common/config-file.js';
import { describeRepository } from '../../src/repo/repo-settings.js';
import { pinnedReachArgs } from '../../src/cli/commands/restore-repositories.js';
import { restoreCommandFor, restoreSpool, spoolMove } from '../../src/commands/restore.js';
import { markSpoolCleared } from '../../src/archiving/fetcher-cleared.js';
import { shellQuote } from '../../src/common/shell-quote.js';
import { processStartTime } from '../../src/common/process-identity.js';
import { fetcherSettings } from '../../src/archiving/prefetch-start.js';

function withConfig(text: string, fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-unit-'));
  try {
    const path = join(dir, 'pgpitr.conf');
    writeFileSync(path, text);
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const S3_CONF = `[global]
repo1-path=/var/lib/pgpitr
repo2-type=s3
repo2-path=/backups/pg/
repo2-s3-endpoint=http://127.0.0.1
repo2-storage-port=9000
repo2-s3-bucket=bkt
repo2-s3-region=us-east-1
repo2-s3-uri-style=path
repo2-s3-key=AKIA
repo2-s3-key-secret=sekrit
`;

test('the legacy --repo PATH is repository 1, posix', () => {
  const o = parseRepoOptions('info', ['--repo', '/srv/repo/', '--stanza', 'main'], {}, {});
  assert.deepEqual(o.repos, [{ index: 1, type: 'posix', path: '/srv/repo', cipher: { type: 'none' } }]);
  assert.equal(o.repoSelected, undefined);
  assert.deepEqual(o.reachArgs, ['--repo', '/srv/repo']);
});

test('repoN-* from the configuration file: posix and s3, sorted, --repo N selects one', () => {
  withConfig(S3_CONF, (conf) => {
    const o = parseRepoOptions('backup', ['--config', conf, '--stanza', 'main', '--repo', '2'], {}, {});
    assert.deepEqual(o.repos.map((r) => [r.index, r.type, r.path]), [
      [1, 'posix', '/var/lib/pgpitr'],
      [2, 's3', '/backups/pg'],
    ]);
    assert.equal(o.repoSelected, 2);
    assert.deepEqual(o.repos[1]!.s3, {
      label: 'repo2',
      endpoint: 'http://127.0.0.1:9000',
      bucket: 'bkt',
      region: 'us-east-1',
      prefix: 'backups/pg',
      uriStyle: 'path',
      verifyTls: true,
      credentials: { accessKeyId: 'AKIA', secretAccessKey: 'sekrit' },
    });
    assert.equal(describeRepository(o.repos[1]!), 's3://bkt/backups/pg at http://127.0.0.1:9000');
    // Another process reaches them through the file, never with a secret on its command line
    assert.deepEqual(o.reachArgs, ['--config', conf, '--repo', '2']);
    // restore_command: also what restore read of the file (its sections may differ from archive-get's)
    const r = parseRepoOptions('restore', ['--config', conf, '--stanza', 'main', '--repo', '2'], {}, {});
    assert.deepEqual(r.reachArgs.slice(0, 2), ['--config', conf]);
    assert.deepEqual(r.reachArgs.slice(-2), ['--repo', '2']);
    assert.ok(r.reachArgs.includes('--repo2-s3-bucket=bkt') && r.reachArgs.includes('--repo1-path=/var/lib/pgpitr'), r.reachArgs.join(' '));
    assert.ok(!r.reachArgs.some((a) => /AKIA|sekrit/.test(a)), r.reachArgs.join(' '));
    assert.throws(() => parseRepoOptions('backup', ['--config', conf, '--stanza', 'main', '--repo', '3'], {}, {}), /--repo 3: no repository 3 is configured/);
  });
});

test('an endpoint without a scheme is https, host-style addressing by default, TLS verified', () => {
  const env = { PGPITR_REPO1_TYPE: 's3', PGPITR_REPO1_S3_ENDPOINT: 's3.eu-west-3.amazonaws.com', PGPITR_REPO1_S3_BUCKET: 'b', PGPITR_REPO1_S3_REGION: 'eu-west-3' };
  const o = parseRepoOptions('info', ['--stanza', 'main'], {}, env);
  assert.deepEqual(o.repos[0]!.s3, { label: 'repo1', endpoint: 'https://s3.eu-west-3.amazonaws.com', bucket: 'b', region: 'eu-west-3', prefix: '', uriStyle: 'host', verifyTls: true });
  assert.equal(o.repos[0]!.path, '/');
  // settings from the environment are carried to restore_command as flags (the server has another environment)
  assert.deepEqual(o.reachArgs, ['--repo1-type=s3', '--repo1-s3-endpoint=s3.eu-west-3.amazonaws.com', '--repo1-s3-bucket=b', '--repo1-s3-region=eu-west-3']);
});

test('precedence: flag, then environment, then the stanza section, then [global]', () => {
  withConfig('[global]\nrepo1-path=/g\nrepo2-path=/g2\n[main]\nrepo1-path=/s\n', (conf) => {
    assert.equal(parseRepoOptions('info', ['--config', conf, '--stanza', 'main'], {}, {}).repos[0]!.path, '/s');
    assert.equal(parseRepoOptions('info', ['--config', conf, '--stanza', 'other'], {}, {}).repos[0]!.path, '/g');
    assert.equal(parseRepoOptions('info', ['--config', conf, '--stanza', 'main'], {}, { PGPITR_REPO1_PATH: '/e' }).repos[0]!.path, '/e');
    assert.equal(parseRepoOptions('info', ['--config', conf, '--stanza', 'main', '--repo1-path', '/f'], {}, { PGPITR_REPO1_PATH: '/e' }).repos[0]!.path, '/f');
  });
});

test('secrets are refused on the command line, accepted from the environment (and named when restore_command cannot have them)', () => {
  const base = ['--stanza', 'main', '--repo1-type=s3', '--repo1-s3-endpoint=h', '--repo1-s3-bucket=b', '--repo1-s3-region=r'];
  for (const key of ['s3-key', 's3-key-secret', 's3-token', 'cipher-pass']) {
    assert.throws(
      () => parseRepoOptions('info', [...base, `--repo1-${key}=x`], {}, {}),
      (e: Error & { hint?: string }) => /not allowed on the command line/.test(e.message) && new RegExp(`PGPITR_REPO1_${key.toUpperCase().replace(/-/g, '_')}`).test(e.hint ?? ''),
    );
  }
  const o = parseRepoOptions('restore', [...base, '-D', '/d'], { extra: { 'pg-data': { type: 'string', short: 'D' } } }, { PGPITR_REPO1_S3_KEY: 'k', PGPITR_REPO1_S3_KEY_SECRET: 's' });
  assert.deepEqual(o.repos[0]!.s3!.credentials, { accessKeyId: 'k', secretAccessKey: 's' });
  assert.deepEqual(o.envOnlySecrets.sort(), ['PGPITR_REPO1_S3_KEY', 'PGPITR_REPO1_S3_KEY_SECRET']);
  assert.ok(!o.reachArgs.some((a) => a.includes('=s') && a.includes('secret')));
  // Without a key of its own, the SDK's default credentials: from this environment, named too.
  const sdk = parseRepoOptions('restore', [...base, '-D', '/d'], { extra: { 'pg-data': { type: 'string', short: 'D' } } }, { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' });
  assert.deepEqual(sdk.envOnlySecrets.sort(), ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
  assert.deepEqual(o.envOnlySecrets.filter((n) => n.startsWith('AWS_')), []);
});

test('bad repository settings: each a usage error naming the setting', () => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--repo', '/r', '--repo1-path', '/p'], {}, /repository 1 is given twice: "\/r" by --repo, and "\/p" by --repo1-path/],
    [['--repo1-type', 'ftp'], {}, /invalid repo1-type "ftp"/],
    [['--repo1-type', 's3', '--repo1-s3-endpoint', 'h', '--repo1-s3-region', 'r'], {}, /no repo1-s3-bucket/],
    [['--repo1-type', 's3', '--repo1-s3-bucket', 'b', '--repo1-s3-region', 'r'], {}, /no repo1-s3-endpoint/],
    [['--repo1-type', 's3', '--repo1-s3-endpoint', 'ftp://h', '--repo1-s3-bucket', 'b', '--repo1-s3-region', 'r'], {}, /invalid repo1-s3-endpoint/],
    [['--repo1-type', 's3', '--repo1-s3-endpoint', 'h', '--repo1-s3-bucket', 'b', '--repo1-s3-region', 'r', '--repo1-storage-port', '99999'], {}, /invalid repo1-storage-port/],
    [['--repo1-type', 's3', '--repo1-s3-endpoint', 'h', '--repo1-s3-bucket', 'b', '--repo1-s3-region', 'r', '--repo1-s3-uri-style', 'vhost'], {}, /invalid repo1-s3-uri-style/],
    [['--repo1-type', 's3', '--repo1-s3-endpoint', 'h', '--repo1-s3-bucket', 'b', '--repo1-s3-region', 'r', '--repo1-path', 'rel'], {}, /invalid repo1-path "rel"/],
    [['--repo1-type', 's3', '--repo1-s3-endpoint', 'h', '--repo1-s3-bucket', 'b', '--repo1-s3-region', 'r'], { PGPITR_REPO1_S3_KEY: 'k' }, /repo1-s3-key-secret is missing/],
    [['--repo1-type', 's3', '--repo1-s3-endpoint', 'h', '--repo1-s3-bucket', 'b', '--repo1-s3-region', 'r'], { PGPITR_REPO1_S3_TOKEN: 't' }, /repo1-s3-token is set without repo1-s3-key/],
    [['--repo1-path', '/p', '--repo1-s3-bucket', 'b'], {}, /repo1-s3-bucket is set but repository 1 is of type posix/],
    [['--repo2-path', 'rel'], {}, /repository path "rel" is relative/],
    [['--repo2-type', 'posix'], {}, /repository 2 has no path/],
    [['--repo1-path', '/p', '--repo1-cipher-type', 'rot13'], {}, /invalid repo1-cipher-type/],
    [['--repo1-path', '/p', '--repo1-cipher-type', 'aes-256-gcm'], {}, /repo1-cipher-pass is not set/],
    [['--repo1-bogus', 'x'], {}, /unknown option "--repo1-bogus"/],
    [['--repo0-path', '/p'], {}, /unknown option "--repo0-path"/],
    [['--repo', 's3'], {}, /repository path "s3" is relative/],
  ];
  for (const [argv, env, re] of cases) {
    assert.throws(() => parseRepoOptions('info', ['--stanza', 'main', ...argv], {}, env), (e: Error & { code?: string }) => {
      assert.match(e.message, re, argv.join(' '));
      assert.equal(e.code, 'ERR_USAGE');
      return true;
    });
  }
});

test('the configuration file accepts repoN-KEY for N from 1 to 256 and refuses others', () => {
  const c = parseConfig('[global]\nrepo1-type=s3\nrepo256-path=/x\n', 'f');
  assert.equal(c.get('global')!.get('repo256-path'), '/x');
  for (const bad of ['repo0-path=/x', 'repo257-path=/x', 'repo1-colour=blue', 'repo01-path=/x']) {
    assert.throws(() => parseConfig(bad, 'f'), /unknown setting/);
  }
});

test('restore_command quotes every value, including --name=value options', () => {
  const cmd = restoreCommandFor(['--config', "/etc/it's.conf", '--repo1-s3-endpoint=a b', '--repo', '2'], 'main', null);
  assert.match(cmd, / archive-get '--missing-exit=81' --no-archive-async --config '\/etc\/it'\\''s.conf' '--repo1-s3-endpoint=a b' --repo '2' --stanza 'main' %f "%p"; case \$\? in 0\) exit 0;; 81\) exit 1;; \*\) exit 200;; esac$/);
});

test('restore_command: only archive-get\'s own "not in the archive" reads as the end of the archive (1); a pgpitr that cannot even load stops recovery (200)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-rc-'));
  const script = process.argv[1];
  process.argv[1] = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  try {
    const cmd = restoreCommandFor(['--repo', join(dir, 'repo')], 'main', null).replace(/%f/g, '000000010000000000000001').replace(/%p/g, join(dir, 'x')).replace(/%%/g, '%');
    // The repository does not exist: archive-get's own failure, 200.
    assert.equal(spawnSync('sh', ['-c', cmd]).status, 200);
    // Node cannot load the script (exits 1): 200, not 1.
    const broken = cmd.replace(process.argv[1]!, join(dir, 'gone.js'));
    assert.notEqual(broken, cmd);
    assert.equal(spawnSync('sh', ['-c', broken]).status, 200);
  } finally {
    process.argv[1] = script!;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('restore_command: a % in a path is doubled; each system and set of repositories has its own prefetch spool', () => {
  const cmd = restoreCommandFor(['--repo', '/r/100%'], 'main', '/spool/50%');
  assert.match(cmd, /^\[ -O '\/spool\/50%%\/main\/archive-get' \] && \{ read -r p s < '\/spool\/50%%\/main\/archive-get'\/fetcher.cleared .* && mv '\/spool\/50%%\/main\/archive-get'\/%f "%p" 2>\/dev\/null && exit 0; /);
  assert.match(cmd, / --spool-path '\/spool\/50%%' --repo '\/r\/100%%' --stanza 'main' %f "%p"; case /);
  const one = [{ index: 1, location: '/r' }];
  const a = restoreSpool('/spool', fetcherSettings(one, 'main', '7000000000000000001'), '/data');
  assert.match(a, /^\/spool\/restore-[0-9a-f]{16}$/);
  assert.equal(restoreSpool('/spool', fetcherSettings(one, 'main', '7000000000000000001'), '/data/'), a);
  assert.notEqual(restoreSpool('/spool', fetcherSettings(one, 'main', '7000000000000000002'), '/data'), a);
  assert.notEqual(restoreSpool('/spool', fetcherSettings([{ index: 1, location: '/other' }], 'main', '7000000000000000001'), '/data'), a);
  // Two restores of the same system into two directories: two spools.
  assert.notEqual(restoreSpool('/spool', fetcherSettings(one, 'main', '7000000000000000001'), '/data2'), a);
});

test('configuration file pg-* settings come after the flags and -d, before PGHOST and the other PG* variables', () => {
  withConfig('[global]\nrepo1-path=/r\npg-host=db1\npg-port=5433\npg-user=cfguser\n', (conf) => {
    const base = ['--config', conf, '--stanza', 'main'];
    const fromFile = parseRepoOptions('check', base, {}, {}).connection;
    assert.deepEqual([fromFile.host, fromFile.port, fromFile.user], ['db1', 5433, 'cfguser']);
    const fromD = parseRepoOptions('check', [...base, '-d', 'host=db2 port=5434'], {}, {}).connection;
    assert.deepEqual([fromD.host, fromD.port, fromD.user], ['db2', 5434, 'cfguser']);
    // The file over PGHOST/PGUSER (a login profile's), as pgBackRest's pg1-* settings; the environment fills in the rest.
    const fromEnv = parseRepoOptions('check', base, {}, { PGHOST: 'db3', PGUSER: 'envuser', PGDATABASE: 'envdb' }).connection;
    assert.deepEqual([fromEnv.host, fromEnv.port, fromEnv.user, fromEnv.dbname], ['db1', 5433, 'cfguser', 'envdb']);
  });
});

test('archive-async from the configuration file is known as given (restore follows it); sizes take units in any case', () => {
  withConfig('[global]\nrepo1-path=/r\narchive-async=n\narchive-push-queue-max=4gb\n', (conf) => {
    const o = parseRepoOptions('restore', ['--config', conf, '--stanza', 'main'], {}, {});
    assert.equal(o.archiveAsync, false);
    assert.equal(o.archiveAsyncGiven, true);
    assert.equal(o.queueMaxBytes, 4 * 1024 ** 3);
  });
  assert.equal(parseRepoOptions('restore', ['--repo', '/r', '--stanza', 'main'], {}, {}).archiveAsyncGiven, false);
});

test('a PGPITR_REPON_ variable that names no setting is left out of restore_command (its archive-get would refuse it)', () => {
  const o = parseRepoOptions('restore', ['--stanza', 'main', '--repo1-path', '/r'], {}, { PGPITR_REPO1_PAHT: '/x', PGPITR_REPO1_RETENTION_FULL: '2' });
  assert.ok(!o.reachArgs.some((a) => a.includes('paht')), o.reachArgs.join(' '));
  assert.ok(o.reachArgs.includes('--repo1-retention-full=2'), o.reachArgs.join(' '));
});

test('an s3 endpoint holding credentials before an @ is refused without echoing them', () => {
  assert.throws(
    () => parseRepoOptions('info', ['--stanza', 'main', '--repo1-type=s3', '--repo1-s3-endpoint=https://AKID:SECRETVALUE@s3.example.com', '--repo1-s3-bucket=b', '--repo1-s3-region=r'], {}, {}),
    (e: Error & { hint?: string }) => /holds credentials before an "@" \(not shown\)/.test(e.message) && !/SECRETVALUE|AKID/.test(e.message + (e.hint ?? '')),
  );
  // A secret with a "/" (common in AWS secrets) makes the URL unparseable: still not echoed.
  assert.throws(
    () => parseRepoOptions('info', ['--stanza', 'main', '--repo1-type=s3', '--repo1-s3-endpoint=AKID:wJalr/XUtn@s3.example.com', '--repo1-s3-bucket=b', '--repo1-s3-region=r'], {}, {}),
    (e: Error & { hint?: string }) => !/wJalr|XUtn|AKID/.test(e.message + (e.hint ?? '')),
  );
});

test('pgBackRest\'s command sections: [stanza:command] > [stanza] > [global:command] > [global], other commands\' left out; a key set twice in a section is refused', () => {
  withConfig('[global]\nrepo1-path=/r\nprocess-max=1\ncompress-level=1\n[global:archive-push]\nprocess-max=4\n[global:archive-get]\nprocess-max=8\n[main]\ncompress-level=2\n[main:archive-push]\ncompress-level=5\n', (conf) => {
    const push = parseRepoOptions('archive-push', ['--config', conf, '--stanza', 'main', 'x'], {}, {});
    assert.deepEqual([push.processMax, push.level], [4, 5]);
    const backup = parseRepoOptions('backup', ['--config', conf, '--stanza', 'main'], {}, {});
    assert.deepEqual([backup.processMax, backup.level], [1, 2]);
  });
  assert.throws(() => parseConfig('[global:archive_push]\nprocess-max=4\n', 'f.conf'), /f\.conf:1: section \[global:archive_push\] names no pgpitr command/);
  assert.throws(() => parseConfig('[global]\nrepo1-path=/a\nrepo1-path=/b\n', 'f.conf'), /f\.conf:3: "repo1-path" is set again \(line 2 sets it in the same section\)/);
});

test('--repo PATH on the command line wins over repo1-path from the configuration file or the environment, and restore_command says it once', () => {
  withConfig('[global]\nrepo1-path=/fromfile\n', (conf) => {
    assert.equal(parseRepoOptions('info', ['--config', conf, '--stanza', 'main', '--repo', '/flag'], {}, {}).repos[0]!.path, '/flag');
    const o = parseRepoOptions('restore', ['--config', conf, '--stanza', 'main', '--repo', '/flag'], {}, { PGPITR_REPO1_PATH: '/env' });
    assert.equal(o.repos[0]!.path, '/flag');
    assert.ok(!o.reachArgs.some((a) => a.startsWith('--repo1-path')), o.reachArgs.join(' ')); // archive-get would refuse the path given twice
    // archive-get with what restore passes on, the file and the environment as they are: the same repository.
    assert.equal(parseRepoOptions('archive-get', [...o.reachArgs, '--stanza', 'main', 'x', 'y'], {}, { PGPITR_REPO1_PATH: '/env' }).repos[0]!.path, '/flag');
  });
});

test('restore_command\'s archive-get reaches the repositories restore planned with, whatever its own sections and the server\'s environment say', () => {
  withConfig('[main]\nrepo1-path=/b\n[main:restore]\nrepo1-path=/a\n', (conf) => {
    const o = parseRepoOptions('restore', ['--config', conf, '--stanza', 'main'], {}, {});
    assert.equal(o.repos[0]!.path, '/a');
    const get = (env: NodeJS.ProcessEnv) => parseRepoOptions('archive-get', [...o.reachArgs, '--stanza', 'main', 'f', 'p'], {}, env).repos.map((r) => r.path);
    assert.deepEqual(get({}), ['/a']);
    assert.deepEqual(get({ PGPITR_REPO1_PATH: '/server-env' }), ['/a']);
  });
  withConfig('[main]\nrepo=/b\n[main:restore]\nrepo=/a\n', (conf) => {
    const o = parseRepoOptions('restore', ['--config', conf, '--stanza', 'main'], {}, {});
    assert.deepEqual(parseRepoOptions('archive-get', [...o.reachArgs, '--stanza', 'main', 'f', 'p'], {}, {}).repos.map((r) => r.path), ['/a']);
  });
});

test('a PGPITR_REPON_ variable naming no setting makes no repository', () => {
  const o = parseRepoOptions('info', ['--stanza', 'main', '--repo', '/r'], {}, { PGPITR_REPO2_TYPO: 'x' });
  assert.deepEqual(o.repos.map((r) => r.index), [1]);
});

test('two repositories in one place (same directory, one inside the other, same bucket and prefix) are refused', () => {
  const refused = (text: string, re: RegExp) =>
    withConfig(text, (conf) => assert.throws(() => parseRepoOptions('info', ['--config', conf, '--stanza', 'main'], {}, {}), (e: Error & { code?: string }) => e.code === 'ERR_USAGE' && re.test(e.message)));
  refused('[global]\nrepo1-path=/srv/dd\nrepo2-path=/srv/dd/.\n', /repositories 1 and 2 are the same place \(\/srv\/dd, \/srv\/dd\)/);
  refused('[global]\nrepo1-path=/srv/dd\nrepo3-path=/srv/dd/sub/\n', /repositories 1 and 3 are one inside the other/);
  const s3 = (n: number, prefix: string) => `repo${n}-type=s3\nrepo${n}-s3-endpoint=http://127.0.0.1:9000\nrepo${n}-s3-bucket=bkt\nrepo${n}-s3-region=us-east-1\nrepo${n}-path=${prefix}\n`;
  refused(`[global]\n${s3(1, '/pg')}${s3(2, '/pg/')}`, /repositories 1 and 2 are the same place/);
  // archive-push and archive-get (what the server runs): said, not refused, so that archiving goes on.
  withConfig('[global]\nrepo1-path=/srv/dd\nrepo2-path=/srv/dd/.\n', (conf) => {
    assert.equal(parseRepoOptions('archive-push', ['--config', conf, '--stanza', 'main'], {}, {}).repos.length, 2);
  });
  // Apart: accepted.
  withConfig(`[global]\nrepo1-path=/srv/dd\nrepo2-path=/srv/dd2\n${s3(3, '/pg')}${s3(4, '/pg2')}`, (conf) => {
    assert.equal(parseRepoOptions('info', ['--config', conf, '--stanza', 'main'], {}, {}).repos.length, 4);
  });
});

test("restore names a secret the configuration file gives only in restore's own sections (archive-get reads its own)", () => {
  withConfig('[global]\nrepo1-path=/r1\nrepo2-path=/r2\nrepo2-cipher-type=aes-256-gcm\n[global:restore]\nrepo2-cipher-pass=only-here\n[main:archive-get]\n', (conf) => {
    assert.deepEqual(parseRepoOptions('restore', ['--config', conf, '--stanza', 'main'], {}, {}).ownSectionSecrets, ['repo2-cipher-pass']);
  });
  withConfig('[global]\nrepo1-path=/r1\nrepo1-cipher-type=aes-256-gcm\nrepo1-cipher-pass=both\n', (conf) => {
    assert.deepEqual(parseRepoOptions('restore', ['--config', conf, '--stanza', 'main'], {}, {}).ownSectionSecrets, []);
  });
});

test("restore_command pinned to --repo N reaches repository 1 by --repo1-path, which wins over repo= and PGPITR_REPO", () => {
  withConfig('[global]\nrepo=/var/lib/pgpitr\nrepo2-path=/mnt/offsite\n', (conf) => {
    const o = parseRepoOptions('restore', ['--config', conf, '--stanza', 'main'], {}, {});
    const pinned = pinnedReachArgs(o.reachArgs, 1);
    assert.deepEqual(pinned.slice(-2), ['--repo', '1']);
    // archive-get as the server runs it: the same file, PGPITR_REPO in its environment too.
    for (const env of [{}, { PGPITR_REPO: '/var/lib/pgpitr' }]) {
      const got = parseRepoOptions('archive-get', [...pinned, '--stanza', 'main', 'X', 'Y'], {}, env);
      assert.equal(got.repoSelected, 1);
      assert.deepEqual(got.repos.map((r) => [r.index, r.path]), [[1, '/var/lib/pgpitr'], [2, '/mnt/offsite']]);
    }
  });
  // The flag given by the user with a legacy path of the file: still refused (which was meant?).
  withConfig('[global]\nrepo=/var/lib/pgpitr\nrepo1-path=/other\n', (conf) => {
    assert.throws(() => parseRepoOptions('info', ['--config', conf, '--stanza', 'main'], {}, {}), /repository 1 is given twice/);
  });
});

test("restore_command's shell move takes a prefetched file only while the fetcher that cleared the spool runs (its pid and start time)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spool-move-'));
  try {
    const spool = join(dir, 'spool');
    mkdirSync(spool);
    const seg = '000000010000000000000003';
    const move = (dest: string) => spawnSync('sh', ['-c', `${spoolMove(shellQuote(spool))}; exit 9`.replace(/%f/g, seg).replace(/%p/g, dest)]).status;
    writeFileSync(join(spool, seg), 'wal');
    assert.equal(move(join(dir, 'none')), 9); // no fetcher.cleared: a spool no fetcher has cleared
    markSpoolCleared(spool); // this process: alive, its start time
    assert.equal(move(join(dir, 'got')), 0);
    assert.ok(existsSync(join(dir, 'got')) && !existsSync(join(spool, seg)));
    writeFileSync(join(spool, seg), 'wal');
    // A killed fetcher's record: its pid gone, or the pid now another process's (start time differs).
    writeFileSync(join(spool, 'fetcher.cleared'), '2147483646 12345\n');
    assert.equal(move(join(dir, 'dead')), 9);
    writeFileSync(join(spool, 'fetcher.cleared'), `${process.pid} 1\n`);
    assert.equal(move(join(dir, 'reused')), 9);
    // A fetcher stopped (SIGSTOP): alive, but it would not remove what a new timeline leaves off the branch.
    const stopped = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      stopped.kill('SIGSTOP');
      for (let i = 0; i < 100 && !/\) T /.test(readFileSync(`/proc/${stopped.pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 10));
      writeFileSync(join(spool, 'fetcher.cleared'), `${stopped.pid} ${processStartTime(stopped.pid!)}\n`);
      assert.equal(move(join(dir, 'stopped')), 9);
    } finally {
      stopped.kill('SIGKILL');
    }
    // An older pgpitr's record (the pid alone), a blank or foreign line: never a handover.
    for (const text of [`${process.pid}\n`, '\n', ' \n', 'self 1\n', '../1 1\n']) {
      writeFileSync(join(spool, 'fetcher.cleared'), text);
      assert.equal(move(join(dir, 'other')), 9, JSON.stringify(text));
    }
    assert.ok(existsSync(join(spool, seg)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
