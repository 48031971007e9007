// Encryption at rest, end to end, on an encrypted posix repository (the
// cipher sits above the driver: the PITR matrix covers S3 + cipher). Nothing
// the repository holds shows the data or a key; a stored file with a flipped
// byte, a truncated WAL file, a file swapped with another backup's and a wrong
// passphrase are each detected and named by verify, archive-get and restore,
// and archive-get then never answers "not found" (recovery must not end early).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';
import { startReceiver, until, untilReceiving } from '../helpers/receive-wal.js';

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

// pgpitr's own logic, not the server's: one version (the newest tested) proves it; the PITR matrix runs on S3 and encrypted on every tested version.
for (const version of versionsFromEnv().slice(-1)) {
  test(`encryption at rest: nothing readable in the repository, every tampering named, a wrong passphrase refused (PostgreSQL ${version})`, async (t) => {
    t.after(() => destroyAll());
    const a = await archivingCluster(version, `cipher${version}`, 'posix-cipher');
    const { c } = a;
    const env = c.connectionEnv();
    const conf = a.repoArgs[1]!;
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, 'PGPITR-PLAINTEXT-MARKER-' || g from generate_series(1, 3000) g`);
    const backup = async () => {
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--compress-type', 'none', '--output', 'json'], env);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { id: string }).id;
    };
    const first = await backup();
    await c.sql(`update pitr set v = v || '-second' where id % 3 = 0`);
    const second = await backup();
    const atSecond = await tableChecksum(c);
    const wal = await switchAndWaitArchived(c);

    await t.test('the repository holds no plaintext data and no key; a clean repository verifies and restores', async () => {
      const marker = JSON.parse(readFileSync(join(a.repo, 'pgpitr-repo.json'), 'utf8')) as { cipher: { type: string; wrapped_key: string } };
      assert.equal(marker.cipher.type, 'aes-256-gcm');
      // The wrapped key is kept twice: one damaged file must not lose every backup.
      assert.deepEqual(readFileSync(join(a.repo, 'pgpitr-repo.json.copy')), readFileSync(join(a.repo, 'pgpitr-repo.json')));
      for (const f of filesUnder(a.repo)) {
        const bytes = readFileSync(f);
        assert.equal(bytes.includes(Buffer.from('PGPITR-PLAINTEXT-MARKER')), false, `plaintext in ${f}`);
        if (!f.endsWith('pgpitr-repo.json') && !f.endsWith('pgpitr-repo.json.copy') && !f.endsWith('.lock')) assert.equal(bytes.subarray(0, 6).toString('latin1'), 'PGPENC', f);
      }
      const v = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(v.code, 0, v.stderr);
      const dir = restoreDir(c, 'clean');
      const r = await runPgpitr(['restore', ...a.repoArgs, '--spool-path', a.spool, '-D', dir, '--target-immediate', '--target-action', 'promote']);
      assert.equal(r.code, 0, r.stderr);
      const copy = await startRecovered(dir, version, `cipher-clean${version}`);
      assert.equal(await tableChecksum(copy), atSecond);
      await copy.destroy();
    });

    await t.test("receive-wal keeps the segment it is receiving in the spool, not as plaintext in the repository", async () => {
      const rxSpool = c.tempDir('rx-spool');
      // What an older pgpitr left in the repository's receive-wal directory (a whole segment not
      // stored yet, here one the archive holds already) is taken along into the spool.
      const oldDir = join(a.repo, 'main', 'receive-wal');
      mkdirSync(oldDir);
      const got = await runPgpitr(['archive-get', ...a.repoArgs, wal, join(oldDir, wal)]);
      assert.equal(got.code, 0, got.stderr);
      const rx = startReceiver([...a.repoArgs, '--spool-path', rxSpool], env);
      try {
        await untilReceiving(rx, c);
        assert.match(rx.log(), /warning: moved 1 file\(s\) receive-wal had received from .*receive-wal \(in the repository, in plaintext\) to .*rx-spool/);
        await c.sql(`insert into pitr select g, 'PGPITR-RECEIVED-MARKER-' || g from generate_series(100001, 100100) g`);
        const partial = () => filesUnder(join(rxSpool, 'main', 'receive-wal')).find((f) => f.endsWith('.partial'));
        await until('the marker in the spool\'s .partial', () => partial() !== undefined && readFileSync(partial()!).includes(Buffer.from('PGPITR-RECEIVED-MARKER')), rx.log);
        assert.equal(existsSync(join(a.repo, 'main', 'receive-wal')), false, 'no receive-wal directory in the encrypted repository');
        for (const f of filesUnder(a.repo)) {
          // The server archives meanwhile: a push's temporary file listed may be renamed before it is read.
          const data = (() => {
            try {
              return readFileSync(f);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
              throw e;
            }
          })();
          assert.equal(data.includes(Buffer.from('PGPITR-RECEIVED-MARKER')), false, `plaintext in ${f}`);
        }
      } finally {
        assert.equal(await rx.stop(), 0, rx.log());
      }
    });

    await t.test('a wrong passphrase: one clear error from verify, restore and archive-get (200, never 1)', async () => {
      const wrong = join(c.tempDir('wrongconf'), 'pgpitr.conf');
      writeFileSync(wrong, readFileSync(conf, 'utf8').replace(/repo1-cipher-pass=.*/, 'repo1-cipher-pass=not the passphrase'));
      const args = ['--config', wrong, '--stanza', 'main'];
      const v = await runPgpitr(['verify', ...args]);
      assert.equal(v.code, 2, v.stderr);
      assert.match(v.stderr, /repo1-cipher-pass does not open repository .*: wrong passphrase/);
      const r = await runPgpitr(['restore', ...args, '-D', restoreDir(c, 'wrongpass'), '--target-immediate']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /wrong passphrase/);
      const g = await runPgpitr(['archive-get', ...args, wal, join(restoreDir(c, 'wrongget'), wal)]);
      assert.equal(g.code, 200, g.stderr);
      assert.match(g.stderr, /wrong passphrase/);
      // Without any cipher setting, the repository says it is encrypted.
      const none = await runPgpitr(['info', '--repo', a.repo, '--stanza', 'main']);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /repository .* is encrypted/);
    });

    await t.test('a flipped byte, a truncated WAL file and a file swapped with another backup\'s are each named', async () => {
      // The largest stored object of the second backup: a byte flipped in its middle.
      const setDir = join(a.repo, 'main', 'backup', second);
      const objects = filesUnder(join(setDir, 'data')).sort((x, y) => statSync(y).size - statSync(x).size);
      const flipped = objects[0]!;
      const bytes = readFileSync(flipped);
      bytes[bytes.length >> 1] ^= 0x20;
      writeFileSync(flipped, bytes);
      // An object of the first backup copied over the same file's object in the second.
      const swapped = objects.find((o) => o !== flipped && statSync(join(a.repo, 'main', 'backup', first, relative(setDir, o)), { throwIfNoEntry: false }))!;
      copyFileSync(join(a.repo, 'main', 'backup', first, relative(setDir, swapped)), swapped);
      // The archived WAL segment: cut short.
      const walFile = filesUnder(join(a.repo, 'main', 'archive')).find((f) => f.includes(`/${wal}-`))!;
      truncateSync(walFile, statSync(walFile).size - 1000);

      const v = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(v.code, 7, v.stderr);
      assert.match(v.stderr, new RegExp(`${relative(a.repo, flipped).replace(/[.]/g, '\\.')}.*fails authentication`));
      assert.match(v.stderr, new RegExp(`${relative(a.repo, swapped).replace(/[.]/g, '\\.')}.*holds the object written as another file`));
      assert.match(v.stderr, new RegExp(`${wal}.*(truncated|fails authentication)`));

      const r = await runPgpitr(['restore', ...a.repoArgs, '--spool-path', a.spool, '-D', restoreDir(c, 'damaged'), '--set', second, '--target-immediate']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /cannot be decrypted: (chunk \d+ fails authentication|it holds the object written as another file)/);

      const g = await runPgpitr(['archive-get', ...a.repoArgs, wal, join(restoreDir(c, 'damagedget'), wal)]);
      assert.equal(g.code, 200, g.stderr);
      assert.match(g.stderr, new RegExp(`${wal}.*(truncated|fails authentication)`));
    });

    await t.test('a damaged or lost marker: its copy serves, check and stanza-create put it back; both lost, stanza-create writes no new key', async () => {
      const markerPath = join(a.repo, 'pgpitr-repo.json');
      const copyPath = join(a.repo, 'pgpitr-repo.json.copy');
      const marker = readFileSync(markerPath);
      try {
        // A changed byte of the marker's wrapped key (still JSON): the copy's key opens the repository.
        const parsed = JSON.parse(marker.toString('utf8')) as { cipher: { wrapped_key: string } };
        const sealed = Buffer.from(parsed.cipher.wrapped_key, 'base64');
        sealed[20]! ^= 0x01;
        parsed.cipher.wrapped_key = sealed.toString('base64');
        writeFileSync(markerPath, JSON.stringify(parsed, null, 2) + '\n');
        const v = await runPgpitr(['verify', ...a.repoArgs, '--set', second]);
        assert.notEqual(v.code, 0, 'verify names the marker whose key differs from its copy');
        assert.match(v.stderr, /pgpitr-repo\.json[^.].*holds a wrapped key other than the one that opened the repository/);
        const info = await runPgpitr(['info', ...a.repoArgs]);
        assert.equal(info.code, 0, info.stderr);
        // check puts it back and fails once (the file holding the key was damaged: an alert); the next check passes.
        const ck = await runPgpitr(['check', ...a.repoArgs, '--output', 'json'], env);
        assert.equal(ck.code, 7, ck.stdout + ck.stderr);
        assert.match(ck.stdout, /pgpitr-repo\.json held a wrapped key that does not open: rewritten from pgpitr-repo\.json\.copy/);
        const again = await runPgpitr(['check', ...a.repoArgs, '--output', 'json'], env);
        assert.equal(again.code, 0, again.stdout + again.stderr);
        assert.deepEqual(readFileSync(markerPath), readFileSync(copyPath));
        const after = await runPgpitr(['verify', ...a.repoArgs, '--set', second]);
        assert.doesNotMatch(after.stderr, /pgpitr-repo\.json/, 'the marker is no longer named (the set itself was damaged above)');

        // A changed key id (the marker does not open) and a marker holding no key at all: stanza-create
        // puts it back from the copy, whose key is never given up.
        const keyIdFlipped = JSON.parse(marker.toString('utf8')) as { cipher: { key_id: string } };
        keyIdFlipped.cipher.key_id = (keyIdFlipped.cipher.key_id[0] === 'a' ? 'b' : 'a') + keyIdFlipped.cipher.key_id.slice(1);
        for (const damaged of [JSON.stringify(keyIdFlipped), JSON.stringify({ format: 'pgpitr-repository', format_version: 1 })]) {
          writeFileSync(markerPath, damaged);
          const sc = await runPgpitr(['stanza-create', ...a.repoArgs], env);
          assert.equal(sc.code, 0, sc.stderr);
          assert.match(sc.stderr, /pgpitr-repo\.json held (a wrapped key that does not open|no encryption key): rewritten from pgpitr-repo\.json\.copy/);
          assert.deepEqual(readFileSync(markerPath), readFileSync(copyPath));
          assert.deepEqual(readFileSync(copyPath), marker);
        }

        // Another encrypted repository's marker (same passphrase) in place of this one's: nothing is written
        // with its key (no new stanza, no copy rewritten), and the error names the key the data needs.
        const otherRepo = join(conf, '..', 'other-repo');
        const otherConf = join(conf, '..', 'other.conf');
        writeFileSync(otherConf, readFileSync(conf, 'utf8').replace(/^repo1-path=.*$/m, `repo1-path=${otherRepo}`), { mode: 0o600 });
        const made = await runPgpitr(['stanza-create', '--config', otherConf, '--stanza', 'main'], env);
        assert.equal(made.code, 0, made.stderr);
        copyFileSync(join(otherRepo, 'pgpitr-repo.json'), markerPath);
        const foreign = await runPgpitr(['stanza-create', '--config', conf, '--stanza', 'second'], env);
        assert.equal(foreign.code, 5, foreign.stderr);
        assert.match(foreign.stderr, /stanza "main" in .* cannot be read with this repository's marker and settings, so nothing was written: .*encrypted with another key/);
        assert.match(foreign.stderr, /put back the one whose cipher\.key_id is [0-9a-f]+ \(pgpitr-repo\.json\.copy may be it\)/);
        assert.equal(existsSync(join(a.repo, 'second')), false);
        assert.deepEqual(readFileSync(copyPath), marker, 'the copy keeps the right key');
        writeFileSync(markerPath, marker);

        // The marker gone: the copy serves, and stanza-create puts the marker back.
        unlinkSync(markerPath);
        const r = await runPgpitr(['restore', ...a.repoArgs, '--spool-path', a.spool, '-D', restoreDir(c, 'copykey'), '--set', first, '--target-immediate', '--dry-run']);
        assert.equal(r.code, 0, r.stderr);
        const sc = await runPgpitr(['stanza-create', ...a.repoArgs], env);
        assert.equal(sc.code, 0, sc.stderr);
        assert.match(sc.stderr, /pgpitr-repo\.json was missing: rewritten from pgpitr-repo\.json\.copy/);
        assert.deepEqual(readFileSync(markerPath), readFileSync(copyPath));

        // Both gone: the key is lost, and no new key is written over what the old one encrypted.
        unlinkSync(markerPath);
        unlinkSync(copyPath);
        const lost = await runPgpitr(['stanza-create', ...a.repoArgs], env);
        assert.equal(lost.code, 5, lost.stderr);
        assert.match(lost.stderr, /holds stanzas \(.*\) but no pgpitr-repo\.json: its key, wrapped in that file, is lost/);
        assert.equal(existsSync(markerPath), false, 'no new marker written');
        assert.equal(existsSync(copyPath), false, 'no new copy written');
      } finally {
        writeFileSync(markerPath, marker);
        writeFileSync(copyPath, marker);
      }
    });
  });
}
