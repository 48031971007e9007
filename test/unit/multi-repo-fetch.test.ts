// archive-get with several repositories (wal/fetch-from-repositories.ts): the
// first verified copy wins, a damaged or unreadable repository is passed over
// with a warning naming it, and "not in the archive" needs every repository
// to answer.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restoreFromRepositories } from '../../src/wal/fetch-from-repositories.js';
import { pushWalFile } from '../../src/repo/archive-store.js';
import { createStanza } from '../../src/repo/stanza.js';
import { repositoryOn } from '../../src/repo/repository.js';
import { PosixStorage } from '../../src/storage/posix/posix-storage.js';
import { segmentFileName } from '../../src/postgres/lsn.js';
import { walSegment } from '../helpers/wal-segment.js';

const SEG = 1024 * 1024;
const SYSID = '7441234567890123456';

function segment(segNo: number): Buffer {
  return walSegment({ segNo, segmentSize: SEG, systemId: SYSID, mark: `segment ${segNo}` });
}

test('archive-get from several repositories: order, fallback, damaged copies, unreachable is never absent', async () => {
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-mrf-'));
  try {
    const paths = [join(root, 'repo1'), join(root, 'repo2')];
    const repos = paths.map((p, i) => {
      mkdirSync(p);
      return { index: i + 1, repo: repositoryOn(new PosixStorage(p), p) };
    });
    const stanzas = [];
    for (const r of repos) stanzas.push((await createStanza(r.repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info);
    const [a, b, c] = [1, 2, 3].map((n) => segmentFileName(1, BigInt(n), SEG));
    // a in both, b in repo2 only, c nowhere.
    await pushWalFile(repos[0]!.repo, stanzas[0]!, a!, segment(1), { compression: 'none' });
    await pushWalFile(repos[1]!.repo, stanzas[1]!, a!, segment(1), { compression: 'lz4' });
    await pushWalFile(repos[1]!.repo, stanzas[1]!, b!, segment(2), { compression: 'lz4' });
    const dest = join(root, 'dest');

    let got = await restoreFromRepositories(repos, 'main', a!, dest);
    assert.equal(got.from?.index, 1);
    assert.deepEqual(got.warnings, []);
    got = await restoreFromRepositories(repos, 'main', b!, dest);
    assert.equal(got.from?.index, 2, 'missing in repo1: fetched from repo2');
    assert.ok(readFileSync(dest).equals(segment(2)));
    assert.deepEqual(got.warnings, []);
    got = await restoreFromRepositories(repos, 'main', c!, dest);
    assert.equal(got.from, null, 'absent from every repository, all answered: not in the archive');

    // A damaged copy in repo1: repo2's, with a warning naming repo1's object.
    const dir1 = join(paths[0]!, 'main', 'archive', a!.slice(0, 16));
    const stored = readdirSync(dir1).find((f) => f.startsWith(a!))!;
    const damaged = readFileSync(join(dir1, stored));
    damaged[5000] ^= 0xff;
    writeFileSync(join(dir1, stored), damaged);
    got = await restoreFromRepositories(repos, 'main', a!, dest);
    assert.equal(got.from?.index, 2);
    assert.ok(readFileSync(dest).equals(segment(1)));
    assert.equal(got.warnings.length, 1);
    assert.match(got.warnings[0]!, new RegExp(`^repo1 \\(.*\\): archived WAL file ".*${stored}" fails its checksum; WAL file "${a}" was fetched from repo2 instead$`));

    // repo1 unreachable: b still comes from repo2 (a warning); c, absent from repo2, is a failure, not "not found".
    renameSync(paths[0]!, `${paths[0]}.away`);
    got = await restoreFromRepositories(repos, 'main', b!, dest);
    assert.equal(got.from?.index, 2);
    assert.match(got.warnings[0]!, /^repo1 .*does not exist or cannot be reached/);
    await assert.rejects(restoreFromRepositories(repos, 'main', c!, dest), (e: Error & { code?: string; hint?: string }) => {
      assert.match(e.message, new RegExp(`^WAL file "${c}" could not be fetched from repo1 \\(.*\\): .*; it is not in repo2$`));
      assert.match(e.hint ?? '', /not taken for the end of the archive/);
      return true;
    });
    // The damaged copy, with repo2 unable to help: a failure too.
    renameSync(`${paths[0]}.away`, paths[0]!);
    renameSync(paths[1]!, `${paths[1]}.away`);
    await assert.rejects(restoreFromRepositories(repos, 'main', a!, dest), /fails its checksum/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a repository that cannot be opened (its S3 CA file unreadable) fails on use only: archive-get fetches from the other', async () => {
  const { openEachRepository } = await import('../../src/repo/open-repository.js');
  const { parseRepoOptions } = await import('../../src/cli/repo-options.js');
  const root = mkdtempSync(join(tmpdir(), 'pgpitr-mrf-'));
  try {
    const conf = join(root, 'pgpitr.conf');
    writeFileSync(conf, [
      '[global]', `repo1-path=${join(root, 'repo1')}`, 'repo2-type=s3', 'repo2-s3-endpoint=http://127.0.0.1', 'repo2-storage-port=9',
      'repo2-s3-bucket=b', 'repo2-s3-region=us-east-1', 'repo2-s3-uri-style=path', 'repo2-s3-key=k', 'repo2-s3-key-secret=s',
      `repo2-storage-ca-file=${join(root, 'no-such-ca.pem')}`, '',
    ].join('\n'));
    mkdirSync(join(root, 'repo1'));
    const o = parseRepoOptions('archive-get', ['--config', conf, '--stanza', 'main', 'x', 'y'], {}, {});
    const repos = await openEachRepository(o.repos);
    assert.deepEqual(repos.map((r) => r.index), [1, 2]);
    const stanza = (await createStanza(repos[0]!.repo, { stanza: 'main', system_identifier: SYSID, pg_major: 16, wal_segment_size: SEG })).info;
    const name = segmentFileName(1, 1n, SEG);
    await pushWalFile(repos[0]!.repo, stanza, name, segment(1), { compression: 'none' });
    const dest = join(root, 'dest');
    const got = await restoreFromRepositories(repos, 'main', name, dest);
    assert.equal(got.from?.index, 1);
    assert.ok(readFileSync(dest).equals(segment(1)));
    // repo2's own use gives the opening's error, naming the option and the file.
    await assert.rejects(repos[1]!.repo.storage.info(''), /cannot read repo2-storage-ca-file ".*no-such-ca\.pem"/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
