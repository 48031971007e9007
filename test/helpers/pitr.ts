// Helpers for point-in-time-recovery tests: a cluster archiving through
// pgpitr, table checksums, waiting for archiving, and restoring and starting
// a copy that is checked and thrown away.

import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { strict as assert } from 'node:assert';
import { runCommand } from '../harness/run.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { TestCluster, onDestroyAll } from '../harness/cluster.js';
import { startS3Server, TEST_CREDENTIALS } from './s3-server.js';
import type { S3TestServer } from './s3-server.js';
import { makeTestCertificates } from './tls-certs.js';
import { runPgpitr, chownTree, CLI } from './pgpitr.js';
import type { RunResult } from '../harness/run.js';

export interface ArchivingCluster {
  c: TestCluster;
  /** posix: the repository's directory; s3: the S3 server's directory (for a look at what it holds). */
  repo: string;
  spool: string;
  /** The options that reach the repository: --repo PATH, or --config FILE; and --stanza main. */
  repoArgs: string[];
  kind: RepoKind;
  /** The S3 server, for the s3 kinds. */
  s3?: S3TestServer;
}

/**
 * Where the tests' repository is: a directory (posix), or a bucket of an S3 server the test starts
 * (over HTTPS with a test CA), either one encrypted (-cipher) with a passphrase in the
 * configuration file.
 */
export type RepoKind = 'posix' | 's3' | 'posix-cipher' | 's3-cipher';

/** A cluster whose archive_command is pgpitr archive-push into a fresh stanza "main". */
export async function archivingCluster(version: number, name: string, kind: RepoKind = 'posix'): Promise<ArchivingCluster> {
  // archive_mode at initdb's start; archive_command (reloadable) once the repository is known: one start.
  const c = await TestCluster.create({ version, name, conf: { archive_mode: 'on' } });
  const spool = c.tempDir('spool');
  let repo: string;
  let repoArgs: string[];
  let s3: S3TestServer | undefined;
  if (kind === 'posix') {
    repo = c.tempDir('repo');
    repoArgs = ['--repo', repo, '--stanza', 'main'];
  } else {
    const conf = join(c.tempDir('conf'), 'pgpitr.conf');
    const lines = ['[global]'];
    if (kind.startsWith('s3')) {
      const certs = await makeTestCertificates('s3-client');
      s3 = await startS3Server({ tls: { cert: certs.serverCert, key: certs.serverKey } });
      const server = s3;
      onDestroyAll(() => server.stop());
      repo = s3.dir;
      lines.push('repo1-type=s3', `repo1-s3-endpoint=${s3.endpoint}`, 'repo1-s3-bucket=bkt', 'repo1-s3-region=us-east-1', 'repo1-s3-uri-style=path', `repo1-storage-ca-file=${certs.caCert}`, `repo1-s3-key=${TEST_CREDENTIALS.accessKeyId}`, `repo1-s3-key-secret=${TEST_CREDENTIALS.secretAccessKey}`, 'repo1-path=/pgpitr');
    } else {
      repo = c.tempDir('repo');
      lines.push(`repo1-path=${repo}`);
    }
    if (kind.endsWith('-cipher')) lines.push('repo1-cipher-type=aes-256-gcm', 'repo1-cipher-pass=correct horse battery staple, tests only');
    writeFileSync(conf, lines.join('\n') + '\n', { mode: 0o600 });
    chownTree(join(conf, '..'));
    repoArgs = ['--config', conf, '--stanza', 'main'];
  }
  const push = `'${process.execPath}' '${CLI}' archive-push ${repoArgs.map((a) => `'${a}'`).join(' ')} %p`;
  await c.sql(`alter system set archive_command = '${push.replace(/'/g, "''")}'`);
  await c.sql('select pg_reload_conf()');
  const r = await runPgpitr(['stanza-create', ...repoArgs], c.connectionEnv());
  if (r.code !== 0) throw new Error(`stanza-create failed: ${r.stderr}`);
  if (!kind.startsWith('s3')) chownTree(repo);
  return { c, repo, spool, repoArgs, kind, ...(s3 ? { s3 } : {}) };
}

/** A checksum of a table's content, to compare a restored copy with what was committed. */
export async function tableChecksum(c: TestCluster, table = 'pitr'): Promise<string> {
  const r = await c.sql<{ sum: string | null; n: number }>(`select md5(coalesce(string_agg(id::text || ':' || v, ',' order by id), '')) as sum, count(*)::int as n from ${table}`);
  return `${r[0]!.n}:${r[0]!.sum}`;
}

/**
 * Switches to a new segment and waits until the archiver has stored the one switched away from.
 * Something is written first (a switch out of an empty segment does nothing), and the switch is
 * repeated while waiting: the archiver may sleep up to a minute between scans.
 */
export async function switchAndWaitArchived(c: TestCluster, seconds = 180): Promise<string> {
  const switchOnce = async () => {
    await c.sql(`select pg_logical_emit_message(false, 'pgpitr-test', 'switch')`);
    return (await c.sql<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name'))[0]!.name;
  };
  const wal = await switchOnce();
  for (let i = 0; i < seconds * 5; i++) {
    const last = (await c.sql<{ last: string | null }>('select last_archived_wal as last from pg_stat_archiver'))[0]!.last ?? '';
    if (last.slice(0, 24) >= wal) return wal;
    if (i % 50 === 49) await switchOnce();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`segment ${wal} was not archived in time:\n${c.logTail()}`);
}

/** An empty directory for a restore, owned by the server's user. */
/** The server's backup_manifest a backup set of a posix repository keeps (backup_manifest[.zst]), decompressed to `to`. */
export async function serverManifest(a: ArchivingCluster, id: string, to: string): Promise<void> {
  const set = join(a.repo, 'main', 'backup', id);
  const z = join(set, 'backup_manifest.zst');
  if (existsSync(z)) {
    const r = await runCommand('zstd', ['-d', '-q', '-f', '-o', to, z]);
    assert.equal(r.code, 0, r.stderr);
    return;
  }
  const plain = join(set, 'backup_manifest');
  assert.ok(existsSync(plain), `backup ${id} keeps no backup_manifest: ${readdirSync(set).join(', ')}`);
  const r = await runCommand('cp', [plain, to]);
  assert.equal(r.code, 0, r.stderr);
}

export function restoreDir(c: TestCluster, name: string): string {
  return c.tempDir(name);
}

export async function restoreWith(a: ArchivingCluster, dir: string, extra: string[]): Promise<RunResult> {
  return runPgpitr(['restore', ...a.repoArgs, '--spool-path', a.spool, '-D', dir, ...extra]);
}

/** Starts a restored directory and waits until recovery has ended (promoted); returns the running copy. */
export async function startRecovered(dir: string, version: number, name: string, opts: { archive?: boolean } = {}): Promise<TestCluster> {
  // A copy that is checked and thrown away must not archive its new timeline into the stanza
  // (postgresql.auto.conf, where the original's ALTER SYSTEM put archive_command, wins over postgresql.conf).
  if (!opts.archive) appendFileSync(join(dir, 'postgresql.auto.conf'), "archive_mode = 'off'\n");
  const r = await TestCluster.startExisting(dir, version, { name });
  for (let i = 0; i < 600; i++) {
    let inRecovery: boolean;
    try {
      inRecovery = (await r.sql<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]!.r;
    } catch (e) {
      // A server that stopped during recovery: its log says why. Its postmaster may still be
      // exiting (removing postmaster.pid): wait for it, so the directory can be started again.
      const failure = new Error(`${(e as Error).message}\nlog of ${dir}:\n${r.logTail()}`);
      await r.destroy().catch(() => undefined);
      throw failure;
    }
    if (!inRecovery) return r;
    await new Promise((res) => setTimeout(res, 200));
  }
  const stuck = new Error(`recovery of ${dir} did not end:\n${r.logTail()}`);
  await r.destroy().catch(() => undefined);
  throw stuck;
}

/**
 * Waits for the prefetch fetcher under `spool` to stop because the recovery it served ended (a
 * promotion): its log says so and its lock is gone. The log of every fetcher under it, when not.
 */
export async function fetcherStoppedByRecoveryEnd(spool: string, timeoutMs = 20_000): Promise<void> {
  const logs = () => readdirSync(spool, { withFileTypes: true, recursive: true }).filter((e) => e.isFile() && e.name === 'fetcher.log').map((e) => join(e.parentPath, e.name));
  const locks = () => readdirSync(spool, { withFileTypes: true, recursive: true }).filter((e) => e.isFile() && e.name === 'fetcher.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const said = logs().some((l) => readFileSync(l, 'utf8').includes('fetcher stopped: the recovery it served ended'));
    if (said && locks().length === 0) return;
    if (Date.now() > deadline) assert.fail(`the fetcher did not stop after the recovery ended:\n${logs().map((l) => readFileSync(l, 'utf8')).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function joinPath(...p: string[]): string {
  return join(...p);
}

/**
 * `pgpitr backup ARGS` from a standby (env: its connection), while the primary switches WAL
 * every second: a standby does not archive, so the backup's stop segment reaches the archive
 * only once the primary has moved past it. Returns the exit code and what was printed.
 */
export async function backupFromStandby(args: string[], env: NodeJS.ProcessEnv, primary: TestCluster): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'backup', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  let code: number | null | undefined;
  while (code === undefined) {
    await primary.sql(`select pg_logical_emit_message(false, 'pgpitr-test', 'x'), pg_switch_wal()`);
    code = await Promise.race([done, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
  }
  // The standby's backup may stop right after one of those switches, on a segment boundary: a
  // restore to its consistent point then needs the segment that starts there (restore/plan.ts),
  // archived once the primary switches again.
  if (code === 0) await switchAndWaitArchived(primary);
  return { code, stdout, stderr };
}
