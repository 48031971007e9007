// Two repositories, posix and S3 (issue 11, test 3): the S3 server stopped for a
// while during a pgbench load. WAL keeps reaching the posix repository, pg_wal
// stays within archive-push-queue-max, `check` names the repository that lacks
// the WAL, and once the server is back the S3 repository has every segment or
// a record of what it dropped, which `info` and `check` report. pgpitr's logic,
// not the server's: one PostgreSQL version proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { TestCluster, destroyAll, onDestroyAll } from '../harness/cluster.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, chownTree, CLI } from '../helpers/pgpitr.js';
import { archivedOnDisk, killLockHolder, waitArchived, fillAndSwitch, readyCount as readyFiles, waitUntil } from '../helpers/archiving.js';
import { startS3Server, TEST_CREDENTIALS } from '../helpers/s3-server.js';
import { makeTestCertificates } from '../helpers/tls-certs.js';

const SEGMENT = /^[0-9A-F]{24}$/;
const SPOOL_WAIT = resolve(dirname(CLI), '../../../bin/pgpitr-spool-wait');
const QUEUE_MAX_SEGMENTS = 4;
const FEW_RETRIES = { PGPITR_S3_TUNING: JSON.stringify({ maxAttempts: 2 }) };
const version = versionsFromEnv().at(-1)!;

interface InfoJson {
  repositories: { repo: number; error?: string; stanzas?: { archive: { timelines: { max: string }[] }; dropped_wal: { first: string; last: string }[] }[] }[];
}

const until = (what: string, cond: () => boolean | Promise<boolean>, seconds = 90): Promise<void> => waitUntil(what, cond, seconds);

test(`a posix and an S3 repository, the S3 server down during a load (PostgreSQL ${version})`, async (t) => {
  const c = await TestCluster.create({ version, name: `mrs3${version}`, conf: { archive_mode: 'on' } });
  const certs = await makeTestCertificates('s3-client');
  const s3 = await startS3Server({ tls: { cert: certs.serverCert, key: certs.serverKey } });
  onDestroyAll(() => s3.stop());
  const repo1 = c.tempDir('repo1');
  const spool = c.tempDir('spool');
  const spoolDir = join(spool, 'main', 'archive-push');
  const conf = join(c.tempDir('conf'), 'pgpitr.conf');
  writeFileSync(conf, [
    '[global]', `repo1-path=${repo1}`, 'repo2-type=s3', `repo2-s3-endpoint=${s3.endpoint}`, 'repo2-s3-bucket=bkt', 'repo2-s3-region=us-east-1', 'repo2-s3-uri-style=path',
    `repo2-storage-ca-file=${certs.caCert}`, `repo2-s3-key=${TEST_CREDENTIALS.accessKeyId}`, `repo2-s3-key-secret=${TEST_CREDENTIALS.secretAccessKey}`, 'repo2-path=/pgpitr', 'compress-type=lz4', '',
  ].join('\n'), { mode: 0o600 });
  t.after(async () => {
    killLockHolder(spoolDir, 'pusher');
    await destroyAll();
  });
  const args = ['--config', conf, '--stanza', 'main'];
  const command =
    `'${SPOOL_WAIT}' '${spoolDir}' %f || PGPITR_PUSHER_IDLE_MS=1000 PGPITR_S3_TUNING='{"maxAttempts":3}' '${process.execPath}' '${CLI}' archive-push --archive-async ` +
    `--spool-path '${spool}' --process-max 2 --archive-timeout 30 --archive-push-queue-max ${QUEUE_MAX_SEGMENTS * 16}MB --config '${conf}' --stanza main %p`;
  await c.sql(`alter system set archive_command = '${command.replace(/'/g, "''")}'`);
  await c.sql('select pg_reload_conf()');
  const env = clusterEnv(c);
  const created = await runPgpitr(['stanza-create', ...args], env);
  assert.equal(created.code, 0, created.stderr);
  chownTree(repo1);
  chownTree(spool);
  chownTree(dirname(conf));
  await c.sql('create table filler (x int)');
  const switchSegment = () => fillAndSwitch(c);
  const inRepo1 = () => archivedOnDisk(repo1, 'main').map((f) => f.name).filter((n) => SEGMENT.test(n));
  const readyCount = () => readyFiles(c);
  const info = async (extraEnv: NodeJS.ProcessEnv = {}) => {
    const r = await runPgpitr(['info', ...args, '--output', 'json'], extraEnv);
    return { code: r.code, json: JSON.parse(r.stdout) as InfoJson, stderr: r.stderr };
  };

  // Both repositories get WAL.
  const startSeg = await switchSegment();
  await waitArchived(c, startSeg);
  const before = await info();
  assert.equal(before.code, 0, before.stderr);
  assert.ok(before.json.repositories.every((r) => (r.stanzas?.[0]?.archive.timelines[0]?.max ?? '') >= startSeg), JSON.stringify(before.json));

  // The S3 server goes away during a load.
  await s3.kill();
  const bin = clientToolDir();
  const pgbenchEnv = { ...process.env, ...env };
  const init = await runCommand(join(bin, 'pgbench'), ['-i', '-s', '2', '-q'], { env: pgbenchEnv });
  assert.equal(init.code, 0, init.stderr);
  let maxReady = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        maxReady = Math.max(maxReady, readyCount());
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const load = await runCommand(join(bin, 'pgbench'), ['-T', '6', '-c', '2'], { env: pgbenchEnv });
  assert.equal(load.code, 0, load.stderr);
  const dropLogged = () => /repo2 \(.*\): archive-push queue of \d+ MiB exceeds/.test(readFileSync(c.logPath, 'utf8'));
  for (let i = 0; i < 4 * QUEUE_MAX_SEGMENTS && !dropLogged(); i++) {
    await switchSegment();
    await new Promise((r) => setTimeout(r, 500));
  }
  const last = await switchSegment();
  const pusherLog = () => readFileSync(join(spoolDir, 'pusher.log'), 'utf8').slice(-4000);
  await until('repo1 to have every segment while S3 is down', () => inRepo1().includes(last)).catch((e: Error) => {
    throw new Error(`${e.message}\n${pusherLog()}`);
  });
  await until('the drop for repo2 past the limit', dropLogged, 60).catch((e: Error) => {
    throw new Error(`${e.message}\n${pusherLog()}`);
  });
  sampling = false;
  await sampler;
  const first = parseInt(startSeg.slice(16), 16);
  const span = parseInt(last.slice(16), 16) - first;
  assert.equal(inRepo1().filter((n) => n > startSeg && n <= last).length, span, 'repo1 has every segment of the load');
  // Within the limit, plus what repo2's stores had in flight when the server went (a request to a
  // store that stopped is retried and its segment is not dropped under it: twice process-max of
  // them on object storage, repo-queue.ts), plus the segments written between two turns of the
  // pusher under this load. The pusher runs with 3 attempts per request (PGPITR_S3_TUNING above):
  // with the default 8, a store to a stopped server hangs 6-13 s and pg_wal grows past this bound
  // meanwhile (noted in issue 11).
  assert.ok(maxReady <= QUEUE_MAX_SEGMENTS + 2 * 2 + 4, `up to ${maxReady} segments waited for archiving (limit ${QUEUE_MAX_SEGMENTS}, process-max 2: 4 stores at once in S3)`);
  assert.doesNotMatch(readFileSync(c.logPath, 'utf8'), /repo1 \(.*\): archive-push queue/);

  // While it is down: info reports repo2's error and still repo1; check fails naming repo2. Two
  // attempts per request (the driver's test knob, src/storage/s3/s3-tuning.ts), not 8: the report of
  // a server that is down is tested, not the SDK's backoff (11 s a command with the default).
  const down = await info(FEW_RETRIES);
  assert.notEqual(down.code, 0);
  assert.ok(down.json.repositories[0]!.stanzas, 'repo1 is reported');
  assert.ok(down.json.repositories[1]!.error, 'repo2 is an error');
  const checkDown = await runPgpitr(['check', ...args, '--archive-timeout', '5'], { ...env, ...FEW_RETRIES });
  assert.notEqual(checkDown.code, 0);
  assert.match(checkDown.stdout, /FAIL repo2 /);
  assert.doesNotMatch(checkDown.stdout, /FAIL repo1 /);

  // The server returns: repo2 gets its drop record, and the WAL that was still waiting. The next
  // segment is written once repo2 takes files again: written before, it could find the queue just
  // past the limit with the files repo2 still lacks, and be dropped for repo2 with them.
  await s3.restart();
  const waiting = () =>
    readdirSync(join(c.dataDir, 'pg_wal', 'archive_status'))
      .filter((f) => f.endsWith('.ready'))
      .map((f) => f.slice(0, -6))
      .filter((n) => !existsSync(join(spoolDir, `${n}.ok`)) && !existsSync(join(spoolDir, `${n}.dropped`)));
  await until('the WAL repo2 still lacked to be stored there (or dropped)', () => waiting().length === 0, 60).catch((e: Error) => {
    throw new Error(`${e.message}: ${waiting().join(', ')}\n${pusherLog()}`);
  });
  await until('repo2 to record its drop', async () => (await info()).json.repositories[1]!.stanzas?.[0]?.dropped_wal.length !== 0, 60);
  // repo2 archives again: a segment written once its queue is back under the limit reaches it (the
  // first ones after the restart may still be dropped, while stores that were retrying against the
  // stopped server are still in flight).
  await until('repo2 to archive again', async () => {
    const after = await switchSegment();
    await waitArchived(c, after, 120);
    return ((await info()).json.repositories[1]!.stanzas?.[0]?.archive.timelines[0]?.max ?? '') >= after;
  }, 120).catch(async (e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify((await info()).json.repositories[1])}\n${pusherLog()}`);
  });
  const back = await info();
  assert.equal(back.code, 0, back.stderr);
  const s2 = back.json.repositories[1]!.stanzas![0]!;
  assert.ok(s2.dropped_wal.length > 0);
  assert.equal(back.json.repositories[0]!.stanzas![0]!.dropped_wal.length, 0, 'nothing dropped for repo1');
  // check names the gap in repo2, explained by the drop, and finds repo1 complete.
  const checkBack = await runPgpitr(['check', ...args, '--archive-timeout', '60'], env);
  assert.equal(checkBack.code, 7, checkBack.stdout + checkBack.stderr);
  assert.match(checkBack.stdout, /FAIL repo2 archive continuity: WAL missing from the archive: .*dropped at .*archive-push-queue-max/);
  assert.match(checkBack.stdout, /ok {3}repo1 archive continuity/);
});
