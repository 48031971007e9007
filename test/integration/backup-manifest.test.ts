// The backup_manifest builder against real servers: take a backup of a tiny
// cluster (PostgreSQL 15 with its own pg_basebackup; 18, or the versions of
// PGPITR_TEST_VERSIONS, through pgpitr's basebackup, which stores the server's
// manifest as received: no other client is installed), rebuild its manifest
// from the parsed entries with checksums recomputed from the backed-up files,
// and expect the very same bytes; then verify a copy of the backup carrying
// the rebuilt manifest (pg_verifybackup 15; our manifest check for the others,
// which it cannot judge). Files whose names need JSON escaping or are not
// UTF-8 make the server write an escaped Path and an Encoded-Path.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { binDir, clientToolDir, versionsFromEnv } from '../harness/pg-versions.js';
import { isRoot, runCommand, serverUserIds } from '../harness/run.js';
import { checkManifest } from '../helpers/manifest-check.js';
import { clusterEnv, runPgpitr } from '../helpers/pgpitr.js';
import { BackupManifestBuilder } from '../../src/postgres/backup-manifest.js';
import { parseLsn } from '../../src/postgres/lsn.js';
import { parseManifestChecksumAlgorithm } from '../../src/postgres/manifest-checksum-algorithm.js';
import { createManifestChecksum } from '../../src/storage/filter/manifest-checksum.js';

interface ParsedFile {
  Path?: string;
  'Encoded-Path'?: string;
  Size: number;
  'Last-Modified': string;
  'Checksum-Algorithm'?: string;
  Checksum?: string;
}

interface ParsedManifest {
  Files: ParsedFile[];
  'WAL-Ranges': { Timeline: number; 'Start-LSN': string; 'End-LSN': string }[];
}

function parseLastModified(text: string): number {
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) GMT$/.exec(text);
  assert.ok(m, `Last-Modified "${text}"`);
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000;
}

/** The manifest of `dir` rebuilt: entries from the server's, checksums computed from the backup's files. */
function rebuild(dir: string, original: Buffer, serverVersion: number): Buffer {
  const text = original.toString('utf8');
  const parsed = JSON.parse(text) as ParsedManifest;
  // JSON.parse would round the 64-bit identifier: take its digits from the text.
  const sysid = /\n"System-Identifier": (\d+),\n/.exec(text)?.[1];
  const builder = new BackupManifestBuilder({ serverVersion, ...(sysid === undefined ? {} : { systemIdentifier: sysid }) });
  for (const f of parsed.Files) {
    const path = f.Path ?? Buffer.from(f['Encoded-Path']!, 'hex');
    const algorithm = parseManifestChecksumAlgorithm(f['Checksum-Algorithm'] ?? 'NONE');
    const sum = createManifestChecksum(algorithm);
    const data = readFileSync(typeof path === 'string' ? join(dir, path) : Buffer.concat([Buffer.from(dir + '/'), path]));
    for (let i = 0; i < data.length; i += 65536) sum.update(data.subarray(i, i + 65536));
    builder.addFile({ path, size: f.Size, mtime: parseLastModified(f['Last-Modified']), checksumAlgorithm: algorithm, checksumHex: sum.digestHex() });
  }
  for (const r of parsed['WAL-Ranges']) builder.addWalRange(r.Timeline, parseLsn(r['Start-LSN']), parseLsn(r['End-LSN']));
  return builder.finish();
}

const ESCAPED_NAME = Buffer.from('odd "name"\twith\\escapes');
const NON_UTF8_NAME = Buffer.from([0x6e, 0x6f, 0x74, 0x2d, 0xff, 0xfe, 0x75, 0x74, 0x66, 0x38]); // not-\xff\xfeutf8

async function tinyCluster(version: number, names: Buffer[]): Promise<TestCluster> {
  const c = await TestCluster.create({ version, name: `manifest${version}` });
  await c.sql('create table t as select g from generate_series(1, 1000) g');
  const odd = names;
  for (const name of odd) {
    const p = Buffer.concat([Buffer.from(c.dataDir + '/'), name]);
    writeFileSync(p, 'x');
    if (isRoot()) chownSync(p, serverUserIds().uid, serverUserIds().gid);
  }
  return c;
}

/** cp -a: Node's cpSync loses names that are not UTF-8. */
async function copyTree(from: string, to: string): Promise<void> {
  const r = await runCommand('cp', ['-a', from, to]);
  assert.equal(r.code, 0, r.stderr);
}

async function serverVersionNum(c: TestCluster): Promise<number> {
  return Number((await c.sql<{ v: string }>("select current_setting('server_version_num') as v"))[0]!.v);
}

function assertSameManifest(dir: string, version: number, nonUtf8: boolean): Buffer {
  const original = readFileSync(join(dir, 'backup_manifest'));
  if (nonUtf8) assert.match(original.toString(), /"Encoded-Path": "6e6f742dfffe75746638"/);
  assert.match(original.toString(), /"Path": "odd \\"name\\"\\twith\\\\escapes"/);
  const rebuilt = rebuild(dir, original, version);
  assert.equal(rebuilt.toString('utf8'), original.toString('utf8'));
  assert.ok(rebuilt.equals(original));
  return rebuilt;
}

test('the builder reproduces PostgreSQL 15\'s backup_manifest, and pg_verifybackup accepts it', async (t) => {
  t.after(destroyAll);
  const src = await tinyCluster(15, [ESCAPED_NAME, NON_UTF8_NAME]);
  const backup = join(src.tempDir('backups'), 'b');
  const tools = clientToolDir();
  const r = await runCommand(join(tools, 'pg_basebackup'), ['-D', backup, '-Fp', '-Xstream', '-c', 'fast', '--manifest-checksums=CRC32C'], { env: { ...process.env, ...src.connectionEnv() } });
  assert.equal(r.code, 0, r.stderr);
  const rebuilt = assertSameManifest(backup, await serverVersionNum(src), true);

  const copy = join(src.tempDir('copies'), 'b');
  await copyTree(backup, copy);
  writeFileSync(join(copy, 'backup_manifest'), rebuilt);
  const v = await runCommand(join(tools, 'pg_verifybackup'), [copy]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

// Other versions go through pgpitr's basebackup; 18 by default, those of PGPITR_TEST_VERSIONS when set.
const viaPgpitr = process.env.PGPITR_TEST_VERSIONS ? versionsFromEnv().filter((v) => v !== 15) : [18];

function installed(version: number): boolean {
  try {
    binDir(version);
    return true;
  } catch {
    return false;
  }
}

for (const version of viaPgpitr) {
  test(`the builder reproduces PostgreSQL ${version}'s backup_manifest (through pgpitr basebackup)`, { skip: installed(version) ? false : `no PostgreSQL ${version} server` }, async (t) => {
    t.after(destroyAll);
    // No non-UTF-8 name here: pgpitr's plain extraction currently writes such a name with U+FFFD in place of the bytes.
    const src = await tinyCluster(version, [ESCAPED_NAME]);
    const backup = join(src.tempDir('backups'), 'b');
    const r = await runPgpitr(['basebackup', '-D', backup, '-Fp', '-Xnone', '-c', 'fast', '--manifest-checksums=sha256'], clusterEnv(src));
    assert.equal(r.code, 0, r.stderr);
    const original = readFileSync(join(backup, 'backup_manifest'));
    if (version >= 17) assert.match(original.toString(), /^\{ "PostgreSQL-Backup-Manifest-Version": 2,\n"System-Identifier": \d+,\n"Files": \[\n/);
    const rebuilt = assertSameManifest(backup, await serverVersionNum(src), false);

    const copy = join(src.tempDir('copies'), 'b');
    await copyTree(backup, copy);
    writeFileSync(join(copy, 'backup_manifest'), rebuilt);
    await checkManifest(copy, ['pgpitr_backup.state']);
  });
}
