// Several repositories (repo1-path, repo2-path in one configuration file):
// stanza-create, info, backup --repo N, restore choosing the repository that
// holds a suitable backup, expire under each repository's own retention,
// verify naming the repository, and one repository out of reach not hiding the
// other. What is tested is pgpitr's own logic: one PostgreSQL version proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { cpSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, chownTree, CLI } from '../helpers/pgpitr.js';
import { startRecovered, tableChecksum } from '../helpers/pitr.js';

interface InfoJson {
  repository: string;
  repositories: { repo: number; location: string; error?: string; stanzas?: { stanza: string; backups: { id: string; state: string }[] }[] }[];
}

function largestFile(dir: string): string {
  let best = { path: '', size: -1 };
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.size > best.size) best = { path: p, size: st.size };
    }
  };
  walk(dir);
  return best.path;
}

const version = versionsFromEnv().at(-1)!;

test(`several repositories: create, info, backup --repo N, restore from the one that can, expire and verify per repository (PostgreSQL ${version})`, async (t) => {
  t.after(() => destroyAll());
  const c = await TestCluster.create({ version, name: `multirepo${version}`, conf: { archive_mode: 'on' } });
  const r1 = c.tempDir('repo1');
  const r2 = c.tempDir('repo2');
  const spool = c.tempDir('spool');
  const conf = join(c.tempDir('conf'), 'pgpitr.conf');
  writeFileSync(conf, `[global]\nrepo1-path=${r1}\nrepo2-path=${r2}\nrepo2-retention-full=1\nspool-path=${spool}\n[main]\nrepo1-retention-full=3\n`);
  chownTree(join(conf, '..'));
  const base = ['--config', conf, '--stanza', 'main'];
  const push = `'${process.execPath}' '${CLI}' archive-push --config '${conf}' --stanza main %p`;
  await c.sql(`alter system set archive_command = '${push.replace(/'/g, "''")}'`);
  await c.sql('select pg_reload_conf()');
  const env = c.connectionEnv();

  const created = await runPgpitr(['stanza-create', ...base], env);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stderr, /created: .*repository 1 /);
  assert.match(created.stderr, /created: .*repository 2 /);
  chownTree(r1);
  chownTree(r2);

  await c.sql('create table pitr (id int primary key, v text)');
  await c.sql(`insert into pitr select g, md5(g::text) from generate_series(1, 5000) g`);
  const backupTo = async (n: number) => {
    const b = await runPgpitr(['backup', ...base, '--repo', String(n), '--wal', 'included', '--start-fast', '--output', 'json'], env);
    assert.equal(b.code, 0, b.stderr);
    return JSON.parse(b.stdout) as { id: string };
  };
  const older = await backupTo(2);
  await c.sql(`insert into pitr select g, 'later' from generate_series(5001, 6000) g`);
  const newer = await backupTo(2);
  const atNewer = await tableChecksum(c);

  await t.test('info reports each repository; the top level stays the first one', async () => {
    const info = await runPgpitr(['info', ...base, '--output', 'json']);
    assert.equal(info.code, 0, info.stderr);
    const j = JSON.parse(info.stdout) as InfoJson;
    assert.equal(j.repository, r1);
    assert.deepEqual(j.repositories.map((r) => [r.repo, r.location, r.stanzas![0]!.backups.map((b) => b.id)]), [
      [1, r1, []],
      // backup applied repo2's own retention (repo2-retention-full=1): the older one is gone
      [2, r2, [newer.id]],
    ]);
    const text = await runPgpitr(['info', ...base]);
    assert.match(text.stdout, /^repository 1: .*\n[\s\S]*^repository 2: /m);
    // --set names a backup of one repository: the other holding none of it is no error.
    const one = await runPgpitr(['info', ...base, '--set', newer.id, '--output', 'json']);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual((JSON.parse(one.stdout) as InfoJson).repositories.map((r) => r.stanzas![0]!.backups.map((b) => b.id)), [[], [newer.id]]);
    const verified = await runPgpitr(['verify', ...base, '--set', newer.id]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const none = await runPgpitr(['info', ...base, '--set', '20200101-000000F']);
    assert.equal(none.code, 6, none.stderr);
    assert.match(none.stderr, /backup "20200101-000000F" does not exist/);
  });

  await t.test('backup and expire apply each repository its own retention', async () => {
    const e = await runPgpitr(['expire', ...base]);
    assert.equal(e.code, 0, e.stderr);
    // (Two backups in one second: the newer one's id is the older one's with _2.)
    assert.doesNotMatch(e.stderr, new RegExp(`${older.id}(?!_)`));
    assert.match(e.stderr, new RegExp(`: repo2: kept backup ${newer.id}: one of the 1 newest`));
    assert.match(e.stderr, /: repo1: no archived WAL to remove/);
    // --retention-full on the command line does not silently override a repository's own policy
    // (repo2 keeps 1, repo1 3 here): refused, unless --repo N says which repository it is for.
    const over = await runPgpitr(['expire', ...base, '--retention-full', '5', '--dry-run']);
    assert.equal(over.code, 2, over.stderr);
    assert.match(over.stderr, /--retention-full=5 would override repo1-retention-full=3/);
    const dry = await runPgpitr(['expire', ...base, '--repo', '2', '--retention-full', '5', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, new RegExp(`kept backup ${newer.id}: one of the 5 newest`));
  });

  await t.test('a backup ID found in two repositories (taken the same second) is not expired or unpinned without --repo', async () => {
    // Backup IDs are unique per repository only: repo1 is given a set of the same ID.
    const copy = join(r1, 'main', 'backup', newer.id);
    cpSync(join(r2, 'main', 'backup', newer.id), copy, { recursive: true });
    try {
      for (const action of [['--set', newer.id], ['--unpin', newer.id], ['--pin', newer.id]]) {
        const r = await runPgpitr(['expire', ...base, ...action]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`backup "${newer.id}" exists in repo1 and repo2`));
        assert.match(r.stderr, /give --repo N to /);
      }
      const dry = await runPgpitr(['expire', ...base, '--repo', '2', '--set', newer.id, '--dry-run']);
      // With --repo N the ID is that repository's: no usage error (repo2's only full backup is then kept by expire's own rule).
      assert.notEqual(dry.code, 2, dry.stderr);
      assert.doesNotMatch(dry.stderr, /exists in repo1 and repo2/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
    const info = await runPgpitr(['info', ...base, '--output', 'json']);
    assert.deepEqual((JSON.parse(info.stdout) as InfoJson).repositories.map((r) => r.stanzas![0]!.backups.map((b) => b.id)), [[], [newer.id]]);
  });

  await t.test('restore without --repo takes the first repository holding a backup that can reach the target', async () => {
    const dir = c.tempDir('restored');
    const r = await runPgpitr(['restore', ...base, '-D', dir, '--target-immediate', '--target-action', 'promote']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /from repository 2, since repository 1 cannot serve it: the stanza has no complete backup/);
    assert.match(readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8'), new RegExp(`restore_command = '.*archive-get .*--config .*${conf.replace(/[/.]/g, '\\$&')}.* --stanza .*main`));
    const copy = await startRecovered(dir, version, `multirepo-copy${version}`);
    assert.equal(await tableChecksum(copy), atNewer);
    await copy.stop();
    // repo1's stanza of another system (created again after a pg_upgrade, say): restore_command,
    // which asks every repository, would stop recovery there. Refused before anything is written.
    const record = join(r1, 'main', 'stanza.json');
    const saved = readFileSync(record, 'utf8');
    writeFileSync(record, saved.replace(/("system_identifier":\s*")\d+"/, '$11"'));
    try {
      const other = c.tempDir('other-system');
      const refused = await runPgpitr(['restore', ...base, '-D', join(other, 'd'), '--target-immediate']);
      assert.equal(refused.code, 7, refused.stderr);
      assert.match(refused.stderr, /repository 1 holds stanza "main" of database system 1, the backup restored is of system \d+/);
      assert.match(refused.stderr, /restore with --repo 2/);
      assert.deepEqual(readdirSync(other), []);
      const pinned = await runPgpitr(['restore', ...base, '--repo', '2', '-D', join(other, 'd'), '--target-immediate', '--dry-run']);
      assert.equal(pinned.code, 0, pinned.stderr);
    } finally {
      writeFileSync(record, saved);
    }
    // A history file that only repository 1 holds (its copy still owed to repository 2 after a
    // failover): a recovery to the latest timeline, planned from repository 2's archive, would follow
    // timeline 1 to its end and leave timeline 2 out. Refused, nothing written; along a timeline given, not.
    const hdir = c.tempDir('history-in-1');
    writeFileSync(join(hdir, '00000002.history'), '1\t0/FF000000\tno recovery target specified\n');
    chownTree(hdir);
    const pushed = await runPgpitr(['archive-push', '--repo', r1, '--stanza', 'main', join(hdir, '00000002.history')]);
    assert.equal(pushed.code, 0, pushed.stderr);
    try {
      const refused = await runPgpitr(['restore', ...base, '-D', join(hdir, 'd'), '--dry-run']);
      assert.equal(refused.code, 7, refused.stderr);
      assert.match(refused.stderr, /repository 1 holds the history file of timeline 2, which repository 2 \(the one holding the backup chosen\) lacks/);
      assert.match(refused.stderr, /--target-timeline 1 to recover along timeline 1 knowingly/);
      const along = await runPgpitr(['restore', ...base, '-D', join(hdir, 'd'), '--dry-run', '--target-timeline', 'current']);
      assert.equal(along.code, 0, along.stderr);
    } finally {
      const walk = (d: string): void => {
        for (const n of readdirSync(d)) {
          const p = join(d, n);
          if (statSync(p).isDirectory()) walk(p);
          else if (n.startsWith('00000002.history')) rmSync(p);
        }
      };
      walk(join(r1, 'main'));
    }
  });

  await t.test('verify reads every repository and names the one with a damaged file', async () => {
    const ok = await runPgpitr(['verify', ...base]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stderr, new RegExp(`: repo2: backup ${newer.id}: \\d+ files`));
    const victim = largestFile(join(r2, 'main', 'backup', newer.id));
    const bytes = readFileSync(victim);
    bytes[bytes.length >> 1] ^= 0x40;
    writeFileSync(victim, bytes);
    const bad = await runPgpitr(['verify', ...base]);
    assert.equal(bad.code, 7, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /: repo2: PROBLEM /);
    assert.doesNotMatch(bad.stderr, /: repo1: PROBLEM /);
    bytes[bytes.length >> 1] ^= 0x40;
    writeFileSync(victim, bytes);
  });

  await t.test('a repository out of reach is reported as such, and does not hide the others', async () => {
    renameSync(r1, `${r1}.away`);
    try {
      const info = await runPgpitr(['info', ...base, '--output', 'json']);
      assert.equal(info.code, 5, info.stderr);
      assert.match(info.stderr, /repo1 \(.*\): repository .* does not exist or cannot be reached/);
      const j = JSON.parse(info.stdout) as InfoJson;
      assert.match(j.repositories[0]!.error!, /does not exist or cannot be reached/);
      assert.deepEqual(j.repositories[1]!.stanzas![0]!.backups.map((b) => b.id), [newer.id]);
      const dry = await runPgpitr(['restore', ...base, '-D', c.tempDir('restored2'), '--target-immediate', '--dry-run', '--output', 'json']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.equal((JSON.parse(dry.stdout) as { backup: string }).backup, newer.id);
      // check says repository 1 is out of reach and still judges archiving into repository 2
      // (archive-push, storing into both, fails while one fails: the server's archiver says so).
      const chk = await runPgpitr(['check', ...base], env);
      assert.equal(chk.code, 7, chk.stdout + chk.stderr);
      assert.match(chk.stdout, /FAIL repo1 repository: repository .* does not exist or cannot be reached/);
      assert.match(chk.stdout, /ok   repo2 archiving: WAL segment [0-9A-F]{24} reached the repository/);
      // The server's archiver failing on it is said once it has tried three times, not after archive-timeout.
      assert.match(chk.stdout, /FAIL archiving: the server's archiver fails \(pg_stat_archiver: [0-9]+ failure/);
      const only2 = await runPgpitr(['info', ...base, '--repo', '2']);
      assert.equal(only2.code, 0, only2.stderr);
      assert.doesNotMatch(only2.stdout, /repository 1/);
      // restore_command asks every repository, and stops recovery (200) at a file none holds while
      // one cannot be read: a recovery to a target reads repository 2 alone, said; one to the end
      // of the archive is refused (repository 1 may hold WAL past repository 2's), nothing written.
      const toEnd = c.tempDir('restored-end');
      const refused = await runPgpitr(['restore', ...base, '-D', join(toEnd, 'd')]);
      assert.equal(refused.code, 7, refused.stderr);
      assert.match(refused.stderr, /repository 1 \(.*cannot be reached\) cannot be read, and a recovery to the end of the archive asks every repository/);
      assert.match(refused.stderr, /restore with --repo 2 to recover to the end of repository 2's archive alone/);
      assert.deepEqual(readdirSync(toEnd), []);
      const dir = c.tempDir('restored-pinned');
      const r = await runPgpitr(['restore', ...base, '-D', dir, '--target-immediate', '--target-action', 'promote']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /warning: repository 1 \(.*\) cannot be read: restore_command reads repository 2 only \(--repo 2\)/);
      assert.match(readFileSync(join(dir, 'postgresql.auto.conf'), 'utf8'), /restore_command = '.*archive-get .* --repo '*2'* /);
      const copy = await startRecovered(dir, version, `multirepo-pinned${version}`);
      assert.equal(await tableChecksum(copy), atNewer, copy.logTail());
      await copy.destroy();
    } finally {
      renameSync(`${r1}.away`, r1);
    }
  });
});
