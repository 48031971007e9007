// Every repository command on an S3 repository (the tests' S3 server, over
// HTTPS with a test CA, reached through a configuration file): archiving, sync
// and async; archive-get with and without the prefetch; receive-wal's
// repository mode (its partial segment stays in the local spool); backup -j 2,
// info, check, verify (a flipped byte in a stored object), restore --delta and
// expire. Then the faults of issue 11 test 4, each a clear error naming the
// object and the fix, with its documented exit code, and nothing half-written
// in the catalog: the server killed mid-backup, wrong credentials, a missing
// bucket, an untrusted certificate, a server answering 503 for a while, and
// archive-get with the server down (exit 200: recovery must not end early).
// check aborts incomplete multipart uploads older than a day.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runPgpitr, chownTree, CLI } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived, tableChecksum } from '../helpers/pitr.js';
import type { ArchivingCluster } from '../helpers/pitr.js';
import { killLockHolder, killFetchers } from '../helpers/archiving.js';
import { TEST_CREDENTIALS } from '../helpers/s3-server.js';

const SPOOL_WAIT = resolve(dirname(CLI), '../../../bin/pgpitr-spool-wait');
const OBJECT_SUFFIX = '._S3rver_object';
/** The driver's test knob (src/storage/s3/s3-tuning.ts): fail fast against a stopped server. */
const FEW_RETRIES = { PGPITR_S3_TUNING: JSON.stringify({ maxAttempts: 2 }) };

interface Record {
  id: string;
  state: string;
  start_wal: string;
}

/** The objects the S3 server holds under the repository's prefix, as key (relative to the prefix) → file. */
function storedObjects(a: ArchivingCluster, under = ''): Map<string, string> {
  const root = join(a.s3!.dir, 'bkt', 'pgpitr');
  const out = new Map<string, string>();
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith(OBJECT_SUFFIX)) out.set(p.slice(root.length + 1, -OBJECT_SUFFIX.length), p);
    }
  };
  walk(join(root, under));
  return out;
}

/** The configuration file of the repository, changed: each [key, value] replaces that key's line (value null: removed). */
function variantConfig(a: ArchivingCluster, name: string, changes: [string, string | null][]): string[] {
  const conf = a.repoArgs[a.repoArgs.indexOf('--config') + 1]!;
  let lines = readFileSync(conf, 'utf8').trimEnd().split('\n');
  for (const [key, value] of changes) {
    lines = lines.filter((l) => !l.startsWith(`${key}=`));
    if (value !== null) lines.push(`${key}=${value}`);
  }
  const file = join(dirname(conf), `${name}.conf`);
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  return ['--config', file, '--stanza', 'main'];
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

// Every command and fault on S3: pgpitr and the driver, not the server, so the newest tested version; the
// PITR matrix (pitr-s3.test.ts) runs on S3 on every tested version.
for (const version of versionsFromEnv().slice(-1)) {
  test(`every repository command on S3, and its faults (PostgreSQL ${version})`, async (t) => {
    const a = await archivingCluster(version, `s3repo${version}`, 's3');
    const { c } = a;
    const spoolDir = join(a.spool, 'main', 'archive-push');
    t.after(async () => {
      killLockHolder(spoolDir, 'pusher');
      killFetchers(a.spool);
      await destroyAll();
    });
    const env = c.connectionEnv();
    chownTree(a.spool);
    await c.sql('create table pitr (id int primary key, v text)');
    await c.sql(`insert into pitr select g, md5(g::text) from generate_series(1, 20000) g`);
    const backup = async (...extra: string[]) => {
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '-j', '2', '--output', 'json', ...extra], env);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Record;
    };
    const info = async () => {
      const r = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { stanzas: { backups: { id: string; state: string }[]; archive: { timelines: { min: string; max: string }[] } }[] };
    };

    await t.test('archive-push (sync), archive-get with and without the prefetch', async () => {
      const wal = await switchAndWaitArchived(c);
      const stored = [...storedObjects(a, 'main/archive').keys()].find((k) => k.split('/').pop()!.startsWith(`${wal}-`));
      assert.ok(stored, `${wal} is not in the bucket`);
      const out = c.tempDir('get');
      const got = await runPgpitr(['archive-get', ...a.repoArgs, wal, join(out, 'sync')]);
      assert.equal(got.code, 0, got.stderr);
      const data = readFileSync(join(out, 'sync'));
      assert.ok(stored.includes(sha256(data)), 'the fetched segment is not what was stored');
      // Its own spool: this test runs as root, and the server's user must own the archiving spool.
      // With the system known (as PostgreSQL running it in the data directory, or restore's --system-id): through a fetcher.
      const system = (await c.sql<{ id: string }>('select system_identifier::text as id from pg_control_system()'))[0]!.id;
      const getSpool = c.tempDir('get-spool');
      const prefetched = await runPgpitr(['archive-get', ...a.repoArgs, '--archive-async', '--spool-path', getSpool, `--system-id=${system}`, wal, join(out, 'async')], { PGPITR_FETCHER_IDLE_MS: '1000' });
      assert.equal(prefetched.code, 0, prefetched.stderr);
      assert.ok(readFileSync(join(out, 'async')).equals(data));
      assert.ok(existsSync(join(getSpool, 'main', 'archive-get', 'fetcher.log')), 'no fetcher ran');
      const missing = await runPgpitr(['archive-get', ...a.repoArgs, 'FFFFFFFF00000000000000FF', join(out, 'none')]);
      assert.equal(missing.code, 1, missing.stderr);
    });

    await t.test('asynchronous archive-push to S3', async () => {
      const conf = a.repoArgs.map((x) => `'${x}'`).join(' ');
      const cmd = `'${SPOOL_WAIT}' '${spoolDir}' %f || PGPITR_PUSHER_IDLE_MS=1000 '${process.execPath}' '${CLI}' archive-push --archive-async --spool-path '${a.spool}' --process-max 2 ${conf} %p`;
      await c.sql(`alter system set archive_command = '${cmd.replace(/'/g, "''")}'`);
      await c.sql('select pg_reload_conf()');
      try {
        const wals: string[] = [];
        for (let i = 0; i < 3; i++) wals.push(await switchAndWaitArchived(c, 60));
        const names = [...storedObjects(a, 'main/archive').keys()].map((k) => k.split('/').pop()!.slice(0, 24));
        for (const w of wals) assert.ok(names.includes(w), `${w} is not in the bucket`);
        assert.ok(existsSync(join(spoolDir, 'pusher.log')), 'no pusher ran');
      } finally {
        const push = `'${process.execPath}' '${CLI}' archive-push ${a.repoArgs.map((x) => `'${x}'`).join(' ')} %p`;
        await c.sql(`alter system set archive_command = '${push.replace(/'/g, "''")}'`);
        await c.sql('select pg_reload_conf()');
      }
    });

    await t.test('receive-wal in repository mode: segments to the bucket, the partial one in the local spool', async () => {
      const spool = c.tempDir('rw-spool');
      const child = spawn(process.execPath, [CLI, 'receive-wal', ...a.repoArgs, '--spool-path', spool, '-v', '-n'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
      try {
        const local = join(spool, 'main', 'receive-wal');
        const partial = () => (existsSync(local) ? readdirSync(local).filter((n) => n.endsWith('.partial')) : []);
        // The .partial file is made with the first bytes received. An idle server sends none (after the
        // previous subtest's segment switch, not a byte until its next running-xacts record, 15-20 s
        // away): a commit at each look gives the receiver some at once.
        for (let i = 0; i < 300 && partial().length === 0; i++) {
          await c.sql('select txid_current()');
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(partial().length > 0, `no partial segment in the spool: ${out}`);
        const wal = await switchAndWaitArchived(c);
        for (let i = 0; i < 300 && !new RegExp(`archived ${wal}`).test(out); i++) await new Promise((r) => setTimeout(r, 100));
        assert.match(out, new RegExp(`(already )?archived ${wal}`));
        assert.equal([...storedObjects(a).keys()].some((k) => k.endsWith('.partial') || k.includes('receive-wal')), false, 'a partial segment went to the bucket');
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });

    const first = await backup();
    const atFirst = await tableChecksum(c);

    await t.test('backup -j 2, info and check', async () => {
      assert.ok(storedObjects(a, `main/backup/${first.id}`).size > 10);
      const i = await info();
      assert.deepEqual(i.stanzas[0]!.backups.map((b) => [b.id, b.state]), [[first.id, 'complete']]);
      const check = await runPgpitr(['check', ...a.repoArgs, '--output', 'json'], env);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      // stanza-create probed the store once and recorded that it enforces exclusive create; check probes again.
      const marker = JSON.parse(readFileSync(storedObjects(a).get('pgpitr-repo.json')!, 'utf8')) as { conditional_create?: boolean };
      assert.equal(marker.conditional_create, true);
      const probe = (JSON.parse(check.stdout) as { checks: { check: string; ok: boolean; message: string }[] }).checks.find((f) => f.check === 'exclusive create');
      assert.ok(probe?.ok && !/advisory/.test(probe.message), JSON.stringify(probe));
      assert.equal([...storedObjects(a).keys()].some((k) => k.startsWith('pgpitr-probe-')), false);
    });

    await t.test('restore, then restore --delta over a copy that diverged', async () => {
      const dir = restoreDir(c, 'restored');
      const full = await restoreWith(a, dir, ['--set', first.id, '--target-immediate', '--target-action', 'promote', '--output', 'json']);
      assert.equal(full.code, 0, full.stderr);
      const written = (JSON.parse(full.stdout) as { files: { written: number } }).files.written;
      let copy = await startRecovered(dir, version, `s3restored${version}`);
      await copy.sql(`update pitr set v = 'diverged' where id < 100`);
      await copy.stop();
      const delta = await restoreWith(a, dir, ['--delta', '--set', first.id, '--target-immediate', '--target-action', 'promote', '--output', 'json']);
      assert.equal(delta.code, 0, delta.stderr);
      const d = (JSON.parse(delta.stdout) as { files: { written: number; unchanged: number } }).files;
      assert.ok(d.written < written / 4, `delta wrote ${d.written} of ${written} files`);
      copy = await startRecovered(dir, version, `s3delta${version}`);
      try {
        assert.equal(await tableChecksum(copy), atFirst);
      } finally {
        await copy.destroy();
      }
    });

    let second!: Record;
    await t.test('the server killed mid-backup: the backup is interrupted, info shows it, a rerun works', async () => {
      await c.sql(`insert into pitr select g, md5(g::text) from generate_series(20001, 40000) g`);
      // Two attempts per request (not 8): the failure against the stopped server is what is tested, not the SDK's backoff.
      const slow = spawn(process.execPath, [CLI, 'backup', ...a.repoArgs, '--start-fast', '-j', '2', '--max-rate', '1M'], { env: { ...process.env, ...env, ...FEW_RETRIES }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      slow.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((res) => slow.on('exit', (code) => res(code)));
      // Killed once the new set has stored files and journaled some of them (what --resume keeps).
      const newSet = () => {
        const keys = [...storedObjects(a, 'main/backup').keys()].filter((k) => k.split('/')[2] !== first.id);
        return keys.some((k) => k.includes('/journal/')) ? keys.find((k) => k.includes('/data/')) : undefined;
      };
      for (let i = 0; i < 300 && newSet() === undefined; i++) await new Promise((r) => setTimeout(r, 100));
      const killedId = newSet()?.split('/')[2];
      assert.ok(killedId, `the backup stored nothing: ${err}`);
      await a.s3!.kill();
      const code = await exited;
      await a.s3!.restart();
      assert.ok(code === 3 || code === 9, `backup exited ${code}: ${err}`);
      assert.match(err, /127\.0\.0\.1/);
      assert.match(err, /hint: /);
      const i = await info();
      assert.deepEqual(i.stanzas[0]!.backups.map((b) => [b.id, b.state]), [[first.id, 'complete'], [killedId, 'interrupted']]);
      const resumed = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '-j', '2', '--output', 'json', '--resume'], env);
      assert.equal(resumed.code, 0, resumed.stderr);
      second = JSON.parse(resumed.stdout) as Record;
      assert.equal(second.id, killedId, `the interrupted backup was not resumed: ${resumed.stderr}`);
      const after = await info();
      assert.deepEqual(after.stanzas[0]!.backups.filter((b) => b.state === 'complete').map((b) => b.id).sort(), [first.id, second.id].sort());
      assert.equal(after.stanzas[0]!.backups.some((b) => b.state !== 'complete'), false, JSON.stringify(after));
    });

    await t.test('verify finds a flipped byte in a stored object and names it', async () => {
      const ok = await runPgpitr(['verify', ...a.repoArgs]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const [key, file] = [...storedObjects(a, `main/backup/${second.id}/data`)].sort((x, y) => statSync(y[1]).size - statSync(x[1]).size)[0]!;
      const bytes = readFileSync(file);
      const original = Buffer.from(bytes);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      writeFileSync(file, bytes);
      try {
        const bad = await runPgpitr(['verify', ...a.repoArgs]);
        assert.equal(bad.code, 7, bad.stdout + bad.stderr);
        const rel = key.slice(`main/backup/${second.id}/`.length);
        assert.match(bad.stderr, new RegExp(`PROBLEM ${second.id}: .*${rel.replace(/[.]/g, '\\.')}.*is damaged`));
      } finally {
        writeFileSync(file, original);
      }
    });

    await t.test('expire removes a backup set and its WAL in batches', async () => {
      const walBefore = storedObjects(a, 'main/archive').size;
      const r = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(storedObjects(a, `main/backup/${first.id}`).size, 0);
      assert.ok(storedObjects(a, 'main/archive').size < walBefore);
      const i = await info();
      assert.deepEqual(i.stanzas[0]!.backups.map((b) => b.id), [second.id]);
      assert.equal(i.stanzas[0]!.archive.timelines[0]!.min, second.start_wal);
    });

    await t.test('a server answering 503 for a while: archive-push and backup retry, then succeed', async () => {
      const failedCount = async () => (await c.sql<{ n: string }>('select failed_count::text as n from pg_stat_archiver'))[0]!.n;
      const failedBefore = await failedCount();
      await a.s3!.faults({ status: 503, forMs: 2500 });
      await switchAndWaitArchived(c);
      await a.s3!.faults({ status: 503, count: 4 });
      const third = await backup();
      assert.equal(third.state, 'complete');
      const counters = await a.s3!.faultCounters();
      assert.ok(counters.failed >= 5, JSON.stringify(counters));
      assert.equal(await failedCount(), failedBefore, 'archive_command failed while the server answered 503');
    });

    await t.test('wrong credentials, a missing bucket and an untrusted certificate: clear errors, exit 3 or 5', async () => {
      const wrong = await runPgpitr(['info', ...variantConfig(a, 'wrong-secret', [['repo1-s3-key-secret', 'not-the-secret']])]);
      assert.equal(wrong.code, 3, wrong.stderr);
      // A HEAD's 403 has no body: the driver asks again with a GET, whose answer says why.
      assert.match(wrong.stderr, /refused the credentials of repo1 to read information about s3:\/\/bkt\/pgpitr\/pgpitr-repo\.json: SignatureDoesNotMatch/);
      assert.match(wrong.stderr, /repo1-s3-key-secret/);
      const bucket = await runPgpitr(['info', ...variantConfig(a, 'no-bucket', [['repo1-s3-bucket', 'nope']])]);
      assert.equal(bucket.code, 5, bucket.stderr);
      assert.match(bucket.stderr, /bucket "nope" does not exist/);
      assert.match(bucket.stderr, /create the bucket/);
      const pushNoBucket = await runPgpitr(['stanza-create', ...variantConfig(a, 'no-bucket', [['repo1-s3-bucket', 'nope']])], env);
      assert.equal(pushNoBucket.code, 5, pushNoBucket.stderr);
      assert.match(pushNoBucket.stderr, /bucket "nope" does not exist/);
      const untrusted = await runPgpitr(['info', ...variantConfig(a, 'no-ca', [['repo1-storage-ca-file', null]])]);
      assert.equal(untrusted.code, 3, untrusted.stderr);
      assert.match(untrusted.stderr, /certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);
      assert.match(untrusted.stderr, /repo1-storage-ca-file/);
      assert.equal(storedObjects(a).size > 0, true);
      // No key in the configuration: the AWS environment variables, then the shared credentials file.
      const noKey = variantConfig(a, 'no-key', [['repo1-s3-key', null], ['repo1-s3-key-secret', null]]);
      const clean = { AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent', AWS_EC2_METADATA_DISABLED: 'true' };
      const fromEnv = await runPgpitr(['info', ...noKey], { ...clean, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      const shared = join(dirname(noKey[1]!), 'aws-credentials');
      writeFileSync(shared, `[pgpitr]\naws_access_key_id = ${TEST_CREDENTIALS.accessKeyId}\naws_secret_access_key = ${TEST_CREDENTIALS.secretAccessKey}\n`, { mode: 0o600 });
      const fromFile = await runPgpitr(['info', ...noKey], { ...clean, AWS_SHARED_CREDENTIALS_FILE: shared, AWS_PROFILE: 'pgpitr' });
      assert.equal(fromFile.code, 0, fromFile.stderr);
    });

    await t.test('check aborts incomplete multipart uploads older than a day; a store that cannot list them is reported', async () => {
      // Uploads as the S3 server keeps them (as a killed multipart write leaves them): one two days old, one fresh.
      const uploads = join(a.s3!.dir, 'bkt', '._S3rver_uploads');
      const makeUpload = (id: string, key: string, ageMs: number) => {
        mkdirSync(join(uploads, id), { recursive: true });
        writeFileSync(join(uploads, id, 'key'), key);
        writeFileSync(join(uploads, id, 'metadata'), '{}');
        const at = new Date(Date.now() - ageMs);
        utimesSync(join(uploads, id, 'key'), at, at);
      };
      makeUpload('0a0a', 'pgpitr/main/backup/20200101-000000F/data/big', 2 * 86_400_000);
      makeUpload('0b0b', 'pgpitr/main/backup/20200101-000000F/data/young', 60_000);
      makeUpload('0c0c', 'elsewhere/not-ours', 2 * 86_400_000);
      // Under the repository's prefix but in no stanza (a repository at a bucket's root shares it with others): left alone.
      makeUpload('0d0d', 'pgpitr/other-app/old', 2 * 86_400_000);
      const finding = async () => {
        const r = await runPgpitr(['check', ...a.repoArgs, '--output', 'json'], env);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        return (JSON.parse(r.stdout) as { checks: { check: string; ok: boolean; message: string; count?: number }[] }).checks.find((f) => f.check === 'incomplete uploads');
      };
      const first = await finding();
      assert.equal(first?.count, 1, JSON.stringify(first));
      assert.match(first!.message, /2 incomplete multipart upload\(s\) under the repository, 1 older than a day, 1 aborted; 1 under the repository's root but in no stanza of it left alone/);
      assert.deepEqual(a.s3!.uploadsLeft().sort(), ['0b0b', '0c0c', '0d0d']);
      await a.s3!.faults({ uploadsNotImplemented: true });
      try {
        const unsupported = await finding();
        assert.ok(unsupported?.ok, JSON.stringify(unsupported));
        assert.match(unsupported!.message, /not supported by this store/);
      } finally {
        await a.s3!.faults({});
      }
    });

    await t.test('a store that ignores If-None-Match: check records it, and locks then say they are advisory', async () => {
      const marker = () => (JSON.parse(readFileSync(storedObjects(a).get('pgpitr-repo.json')!, 'utf8')) as { conditional_create?: boolean }).conditional_create;
      await a.s3!.faults({ ignoreIfNoneMatch: true });
      try {
        const check = await runPgpitr(['check', ...a.repoArgs, '--output', 'json'], env);
        assert.equal(check.code, 0, check.stdout + check.stderr);
        const probe = (JSON.parse(check.stdout) as { checks: { check: string; ok: boolean; message: string }[] }).checks.find((f) => f.check === 'exclusive create');
        assert.match(probe?.message ?? '', /locks on this store are advisory/);
        assert.equal(marker(), false);
        const expire = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '5']);
        assert.equal(expire.code, 0, expire.stderr);
        assert.match(expire.stderr, /warning: .*locks on this store are advisory/);
      } finally {
        await a.s3!.faults({});
      }
      const again = await runPgpitr(['check', ...a.repoArgs], env);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.equal(marker(), true);
      const quiet = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '5']);
      assert.doesNotMatch(quiet.stderr, /advisory/);
    });

    await t.test('archive-get while the server is down exits 200, not 1', async () => {
      const wal = readdirSync(join(c.dataDir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()[0]!;
      await a.s3!.kill();
      try {
        const r = await runPgpitr(['archive-get', ...a.repoArgs, wal, join(c.tempDir('down'), 'x')], FEW_RETRIES);
        assert.equal(r.code, 200, r.stderr);
        assert.match(r.stderr, /127\.0\.0\.1:\d+ is unreachable/);
      } finally {
        await a.s3!.restart();
      }
    });

    await t.test('stanza-delete removes the stanza\'s objects, the record first', async () => {
      assert.ok(storedObjects(a, 'main/backup').size > 0);
      const dry = await runPgpitr(['stanza-delete', ...a.repoArgs]);
      assert.equal(dry.code, 2, dry.stderr);
      assert.ok(storedObjects(a, 'main').has('main/stanza.json'));
      const r = await runPgpitr(['stanza-delete', ...a.repoArgs, '--force']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /deleted stanza "main" from repository .*: system \d+/);
      const left = storedObjects(a, 'main');
      assert.equal(left.has('main/stanza.json'), false);
      assert.equal(storedObjects(a, 'main/backup').size, 0, [...left.keys()].join(', '));
      const conf = a.repoArgs[a.repoArgs.indexOf('--config') + 1]!;
      const listed = await runPgpitr(['info', '--config', conf, '--output', 'json']);
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual((JSON.parse(listed.stdout) as { stanzas: unknown[] }).stanzas, []);
    });
  });
}
