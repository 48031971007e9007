// WAL archiving into two posix repositories (repo1-path and repo2-path in a
// configuration file): archive-push, synchronous and asynchronous, stores
// every segment in both; with repo2 unwritable for the server's user, the
// synchronous push fails naming repo2 and succeeds once it returns (repo1
// "already archived"); the asynchronous pusher keeps repo1 complete, catches
// repo2 up when it returns before the queue limit, and past the limit during
// a pgbench load drops only for repo2, keeps pg_wal within the limit and
// records repo2's drop once it returns. archive-get takes what repo1 lacks or
// holds damaged from repo2, with a warning, and exits with the failure code,
// never 1, when repo1 is unreachable and repo2 lacks the file.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, chownTree, CLI } from '../helpers/pgpitr.js';
import { waitArchived, archivedOnDisk, killLockHolder, lockHolderPid, readyCount, fillAndSwitch as switchSegment, waitUntil as until, killFetchers } from '../helpers/archiving.js';

const SEGMENT = /^[0-9A-F]{24}$/;
const SPOOL_WAIT = resolve(dirname(CLI), '../../../bin/pgpitr-spool-wait');
const QUEUE_MAX_SEGMENTS = 3;

/** The server's user can (or cannot) write the tree (the tests run as root, the server as postgres). */
function setWritable(path: string, writable: boolean): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, writable ? 0o700 : 0o500);
    for (const n of readdirSync(path)) setWritable(join(path, n), writable);
  }
}

/** Every segment a drop record in the repository names. */
function dropped(repo: string): Set<string> {
  const dir = join(repo, 'main', 'archive-drops');
  const out = new Set<string>();
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const d = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { first: string; last: string };
    const tli = d.first.slice(0, 8);
    const to = parseInt(d.last.slice(8), 16);
    for (let n = parseInt(d.first.slice(8), 16); n <= to; n++) out.add(tli + n.toString(16).toUpperCase().padStart(16, '0'));
  }
  return out;
}

function segmentsIn(repo: string): string[] {
  return archivedOnDisk(repo, 'main').map((f) => f.name).filter((n) => SEGMENT.test(n));
}


// pgpitr's own logic, not the server's: one version (the newest tested) proves it; the PITR matrix runs on S3 and encrypted on every tested version.
for (const version of versionsFromEnv().slice(-1)) {
  test(`archiving into two repositories (PostgreSQL ${version})`, async (t) => {
    const c = await TestCluster.create({ version, name: `mra${version}`, conf: { archive_mode: 'on' } });
    const repo1 = c.tempDir('repo1');
    const repo2 = c.tempDir('repo2');
    const spool = c.tempDir('spool');
    const spoolDir = join(spool, 'main', 'archive-push');
    const conf = join(c.tempDir('conf'), 'pgpitr.conf');
    writeFileSync(conf, `[global]\nrepo1-path=${repo1}\nrepo2-path=${repo2}\ncompress-type=lz4\n\n[main]\n`);
    t.after(async () => {
      killLockHolder(spoolDir, 'pusher');
      killFetchers(spool);
      await destroyAll();
    });
    const args = ['--config', conf, '--stanza', 'main'];
    const setArchiveCommand = async (command: string) => {
      await c.sql(`alter system set archive_command = '${command.replace(/'/g, "''")}'`);
      await c.sql('select pg_reload_conf()');
    };
    const syncCommand = `'${process.execPath}' '${CLI}' archive-push --config '${conf}' --stanza main %p`;
    const asyncCommand =
      `'${SPOOL_WAIT}' '${spoolDir}' %f || PGPITR_PUSHER_IDLE_MS=1000 '${process.execPath}' '${CLI}' archive-push --archive-async ` +
      `--spool-path '${spool}' --process-max 2 --archive-timeout 30 --archive-push-queue-max ${QUEUE_MAX_SEGMENTS * 16}MB --config '${conf}' --stanza main %p`;
    await setArchiveCommand(syncCommand);
    const env = clusterEnv(c);
    for (const n of ['1', '2']) {
      const created = await runPgpitr(['stanza-create', ...args, '--repo', n], env);
      assert.equal(created.code, 0, created.stderr);
    }
    chownTree(repo1);
    chownTree(repo2);
    chownTree(spool);
    chownTree(dirname(conf));
    await c.sql('create table filler (x int)');

    await t.test('synchronous archive-push stores in both; a failing repo2 is named, and a rerun finds repo1 "already archived"', async () => {
      let last = '';
      for (let i = 0; i < 2; i++) last = await switchSegment(c);
      await waitArchived(c, last);
      for (const r of [repo1, repo2]) assert.ok(segmentsIn(r).includes(last), `${last} missing from ${r}`);
      const refused = await runPgpitr(['archive-push', ...args, '--repo', '1', join(c.dataDir, 'pg_wal', last)]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /every configured repository: --repo 1 is not accepted/);

      setWritable(join(repo2, 'main'), false);
      const failing = await switchSegment(c);
      await until('archive_command to fail naming repo2', () => /could not be archived in repo2 \(/.test(readFileSync(c.logPath, 'utf8')));
      assert.ok(segmentsIn(repo1).includes(failing), 'repo1 has it meanwhile');
      assert.ok(!segmentsIn(repo2).includes(failing));
      setWritable(join(repo2, 'main'), true);
      await switchSegment(c); // wakes the archiver, which pauses after three failures
      await waitArchived(c, failing);
      assert.ok(segmentsIn(repo2).includes(failing));
      assert.match(readFileSync(c.logPath, 'utf8'), new RegExp(`${failing}" is already archived in repo1 \\(.*\\) with the same content`));
    });

    await t.test('asynchronous: both repositories; repo2 away and back before the limit catches up', async () => {
      await setArchiveCommand(asyncCommand);
      let last = '';
      for (let i = 0; i < 2; i++) last = await switchSegment(c);
      await waitArchived(c, last);
      for (const r of [repo1, repo2]) assert.ok(segmentsIn(r).includes(last), `${last} missing from ${r}`);
      const lock = JSON.parse(readFileSync(join(spoolDir, 'pusher.lock'), 'utf8')) as { settings: string[] };
      assert.ok(lock.settings.includes(`repo1=${repo1}`) && lock.settings.includes(`repo2=${repo2}`), JSON.stringify(lock.settings));

      setWritable(join(repo2, 'main'), false);
      const away = [await switchSegment(c), await switchSegment(c)];
      await until('repo1 to get them while repo2 is away', () => away.every((n) => segmentsIn(repo1).includes(n)));
      await until('the pusher to report repo2', () => existsSync(join(spoolDir, 'pusher.log')) && readFileSync(join(spoolDir, 'pusher.log'), 'utf8').includes(`error: ${away[0]} in repo2 (${repo2})`));
      setWritable(join(repo2, 'main'), true);
      await switchSegment(c); // wakes the archiver, which pauses after three failures
      await waitArchived(c, away[1]!);
      for (const n of away) assert.ok(segmentsIn(repo2).includes(n), `repo2 did not catch up ${n}`);
    });

    await t.test('asynchronous under pgbench with repo2 away: repo1 keeps every segment, pg_wal stays within the limit, repo2 records its drop', async () => {
      const startSeg = await switchSegment(c);
      await waitArchived(c, startSeg);
      setWritable(join(repo2, 'main'), false);
      const bin = clientToolDir();
      const pgbenchEnv = { ...process.env, ...env };
      const init = await runCommand(join(bin, 'pgbench'), ['-i', '-s', '2', '-q'], { env: pgbenchEnv });
      assert.equal(init.code, 0, init.stderr);
      let maxReady = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          try {
            maxReady = Math.max(maxReady, readyCount(c));
          } catch {
            return; // the cluster is gone (a failed test)
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const load = await runCommand(join(bin, 'pgbench'), ['-T', '6', '-c', '2'], { env: pgbenchEnv });
      assert.equal(load.code, 0, load.stderr);
      const pusherLog = () => readFileSync(join(spoolDir, 'pusher.log'), 'utf8');
      const dropLogged = () => /archive-push queue of \d+ MiB exceeds/.test(readFileSync(c.logPath, 'utf8'));
      // More segments (each one waits for repo2) until the queue passes the limit, should pgbench not have.
      for (let i = 0; i < 3 * QUEUE_MAX_SEGMENTS && !dropLogged(); i++) {
        await switchSegment(c);
        await new Promise((r) => setTimeout(r, 500));
      }
      const last = await switchSegment(c);
      await until('repo1 to have every segment', () => segmentsIn(repo1).includes(last), 60).catch((e: Error) => {
        throw new Error(`${e.message}\n${pusherLog().slice(-5000)}`);
      });
      // The last few stay within the limit, unarchived for repo2 (archive_command fails for them): dropped only past it.
      await until('the drop past the limit', dropLogged, 30).catch((e: Error) => {
        throw new Error(`${e.message}\n${pusherLog().slice(-5000)}`);
      });
      sampling = false;
      await sampler;
      const stored1 = segmentsIn(repo1).filter((n) => n > startSeg && n <= last);
      const first = parseInt(startSeg.slice(16), 16);
      const span = parseInt(last.slice(16), 16) - first;
      assert.ok(span > QUEUE_MAX_SEGMENTS, `only ${span} segments written`);
      assert.equal(stored1.length, span, `repo1 lacks some of the ${span} segments after ${startSeg}: has ${stored1.join(' ')}\n${pusherLog().slice(-5000)}`);
      // Dropped past the limit: pg_wal's archive queue stayed near it (a file or two arrive between the pusher's turns).
      assert.ok(maxReady <= QUEUE_MAX_SEGMENTS + 3, `up to ${maxReady} segments waited for archiving (limit ${QUEUE_MAX_SEGMENTS})`);
      const serverLog = readFileSync(c.logPath, 'utf8');
      assert.match(serverLog, /repo2 \(.*\): archive-push queue of \d+ MiB exceeds archive-push-queue-max \(48 MiB\): dropped (\d+ WAL segment\(s\) of [0-9A-F]{24} to [0-9A-F]{24}|WAL segment [0-9A-F]{24}) WITHOUT ARCHIVING THEM IN REPO2/);
      assert.doesNotMatch(serverLog, /repo1 \(.*\): archive-push queue/);
      const pending = () => (existsSync(join(spoolDir, 'repo2', 'drops')) ? readdirSync(join(spoolDir, 'repo2', 'drops')).filter((f) => f.endsWith('.json')) : []);
      assert.ok(pending().length >= 1, 'the drop record waits in the spool while repo2 is away');
      assert.ok(!existsSync(join(repo1, 'main', 'archive-drops')) || readdirSync(join(repo1, 'main', 'archive-drops')).length === 0, 'nothing dropped for repo1');

      // repo2 returns: the drop records reach it, the segments still waiting catch up, new WAL reaches both.
      setWritable(join(repo2, 'main'), true);
      await until('the drop records to reach repo2', () => pending().length === 0);
      // The segments still waiting for repo2 reach it on the pusher's own retries, before a new
      // one is written: a new segment while those still wait would pass the limit again, and be
      // dropped for repo2 with them (as it should: the queue limit holds for a repository back).
      const waiting = segmentsIn(repo1).filter((n) => n > startSeg && n <= last && !dropped(repo2).has(n));
      await until('repo2 to catch up the segments not dropped for it', () => waiting.every((n) => segmentsIn(repo2).includes(n))).catch((e: Error) => {
        throw new Error(`${e.message}: ${waiting.filter((n) => !segmentsIn(repo2).includes(n)).join(' ')}\n${pusherLog().slice(-5000)}`);
      });
      const after = await switchSegment(c);
      await waitArchived(c, after);
      const records = readdirSync(join(repo2, 'main', 'archive-drops')).filter((f) => f.endsWith('.json'));
      assert.ok(records.length >= 1);
      const droppedRecords = records.map((f) => JSON.parse(readFileSync(join(repo2, 'main', 'archive-drops', f), 'utf8')) as { first: string; last: string });
      for (const d of droppedRecords) assert.ok(!segmentsIn(repo2).includes(d.first), `${d.first} is recorded dropped and must not be in repo2`);
      await until('the new segment in repo2', () => segmentsIn(repo2).includes(after)).catch((e: Error) => {
        throw new Error(`${e.message}\n${pusherLog().slice(-5000)}`);
      });
      const check = await runPgpitr(['check', ...args, '--repo', '2', '--archive-timeout', '60'], env);
      assert.equal(check.code, 7, check.stdout + check.stderr);
      assert.match(check.stdout, /FAIL archive continuity: WAL missing from the archive: .*\(dropped at/);
    });

    await t.test('archive-get: fallback to repo2 for a missing or damaged segment; repo1 unreachable is never "not found"', async () => {
      const both = segmentsIn(repo1).filter((n) => segmentsIn(repo2).includes(n));
      assert.ok(both.length >= 3);
      const [missing, damaged, fine] = both.slice(-3) as [string, string, string];
      const dirOf = (repo: string, n: string) => join(repo, 'main', 'archive', n.slice(0, 16));
      const storedFile = (repo: string, n: string) => join(dirOf(repo, n), readdirSync(dirOf(repo, n)).find((f) => f.startsWith(`${n}-`))!);
      unlinkSync(storedFile(repo1, missing));
      const bad = storedFile(repo1, damaged);
      const bytes = readFileSync(bad);
      bytes[bytes.length >> 1] ^= 0xff;
      writeFileSync(bad, bytes);
      const out = c.tempDir('fetched');
      const get = (n: string, extra: string[] = []) => runPgpitr(['archive-get', ...args, ...extra, n, join(out, n)]);

      const m = await get(missing);
      assert.equal(m.code, 0, m.stderr);
      assert.equal(m.stderr, '');
      const d = await get(damaged);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stderr, new RegExp(`warning: repo1 \\(${repo1}\\): archived WAL file "${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" (fails its checksum|cannot be decompressed).*fetched from repo2 instead`));
      // --repo 1: only repo1, whose copy is damaged.
      assert.equal((await get(damaged, ['--repo', '1'])).code, 200);
      // Beyond the end of the archive, every repository answering: 1.
      const future = `${last24(both)}`;
      assert.equal((await get(future)).code, 1);
      // Asked for by another database system's cluster (--system-id, or the pg_control of the data
      // directory restore_command runs in): never served, and never "not in the archive" either.
      for (const n of [fine, future]) {
        const foreign = await get(n, ['--system-id=1']);
        assert.equal(foreign.code, 200, foreign.stderr);
        assert.match(foreign.stderr, /stanza "main" in .* is for database system \d+, the cluster being recovered is system 1/);
      }
      const sysid = (await c.sql<{ id: string }>('select system_identifier::text as id from pg_control_system()'))[0]!.id;
      for (const [system, code] of [[sysid, 0], ['42', 200]] as const) {
        const fake = c.tempDir(`pgdata-${system}`);
        mkdirSync(join(fake, 'global'), { recursive: true });
        mkdirSync(join(fake, 'pg_wal'), { recursive: true });
        const control = Buffer.alloc(8192);
        control.writeBigUInt64LE(BigInt(system), 0);
        writeFileSync(join(fake, 'global', 'pg_control'), control);
        const r = await runCommand(process.execPath, [CLI, 'archive-get', ...args, fine, 'pg_wal/RECOVERYXLOG'], { cwd: fake });
        assert.equal(r.code, code, `system ${system}: ${r.stderr}`);
        assert.equal(existsSync(join(fake, 'pg_wal', 'RECOVERYXLOG')), code === 0);
      }

      // repo1 unreachable: what repo2 holds comes from it; what it lacks is a failure, not the end of the archive.
      renameSync(repo1, `${repo1}.away`);
      try {
        const f = await get(fine);
        assert.equal(f.code, 0, f.stderr);
        assert.match(f.stderr, /warning: repo1 .*does not exist or cannot be reached.*fetched from repo2 instead/);
        const records = readdirSync(join(repo2, 'main', 'archive-drops')).map((x) => JSON.parse(readFileSync(join(repo2, 'main', 'archive-drops', x), 'utf8')) as { first: string });
        const onlyInRepo1 = records[0]!.first;
        const g = await get(onlyInRepo1);
        assert.equal(g.code, 200, g.stderr);
        assert.match(g.stderr, new RegExp(`could not be fetched from repo1 \\(${repo1}\\): .*it is not in repo2`));
        assert.equal((await get(future)).code, 200);
      } finally {
        renameSync(`${repo1}.away`, repo1);
      }

      // The prefetching fetcher falls back the same way, and its lock names both repositories (and
      // the system: without one known, archive-get starts no fetcher).
      const prefetch = ['--archive-async', '--spool-path', spool, '--archive-get-queue-max', '32MB', `--system-id=${sysid}`];
      const p = await get(missing, prefetch);
      assert.equal(p.code, 0, p.stderr);
      const getDir = join(spool, 'main', 'archive-get');
      await until('the fetcher to start', () => lockHolderPid(getDir, 'fetcher') !== null, 20);
      const fetcherLock = JSON.parse(readFileSync(join(getDir, 'fetcher.lock'), 'utf8')) as { settings: string[] };
      assert.deepEqual(fetcherLock.settings, [`repo1 ${repo1}, repo2 ${repo2}`, 'main', `system ${sysid}`]);
      const next = both[both.indexOf(missing) + 1]!; // the damaged one
      await until('the fetcher to prefetch past the damaged copy', () => existsSync(join(getDir, next)), 30);
      assert.match(readFileSync(join(getDir, 'fetcher.log'), 'utf8'), new RegExp(`warning: repo1 .*fetched from repo2 instead`));
      killLockHolder(getDir, 'fetcher');
    });
  });
}

/** A segment name well past the newest of `names`. */
function last24(names: string[]): string {
  const newest = [...names].sort().at(-1)!;
  return newest.slice(0, 16) + (parseInt(newest.slice(16), 16) + 100).toString(16).toUpperCase().padStart(8, '0');
}
