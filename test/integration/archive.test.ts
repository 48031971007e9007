// Continuous archiving through archive-push under a pgbench load: every
// segment PostgreSQL reports archived is in the repository, byte-identical
// after archive-get and readable by pg_waldump; pushes are idempotent and
// refuse different content or another cluster's WAL without changing what is
// stored; a push killed midway leaves nothing archive-get would take; check
// passes on a correct set-up and names each broken one; info reports the archive.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, existsSync, copyFileSync, utimesSync, unlinkSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { runPgpitr, clusterEnv, chownTree, CLI } from '../helpers/pgpitr.js';
import { waitArchived, archivedOnDisk } from '../helpers/archiving.js';

const SEGMENT = /^[0-9A-F]{24}$/;
const SEGMENT_SIZE = 16 * 1024 * 1024;

/** A copy of a segment that passes for segment `name`: its first page header's address (and timeline) rewritten. */
function disguisedAs(data: Buffer, name: string, timeline?: number): Buffer {
  const copy = Buffer.from(data);
  copy.writeBigUInt64LE((BigInt('0x' + name.slice(8, 16)) << 32n) + BigInt('0x' + name.slice(16)) * BigInt(SEGMENT_SIZE), 8);
  if (timeline !== undefined) copy.writeUInt32LE(timeline, 4);
  return copy;
}

// One version: archiving does not change with the server's version; 15's pg_waldump judges what we archived.
for (const version of versionsFromEnv().slice(0, 1)) {
  test(`archive-push, archive-get, check and info (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const base = await TestCluster.create({ version, name: `arch${version}`, conf: { archive_mode: 'on', wal_keep_size: '1GB' } });
    const repo = base.tempDir('repo');
    const command = `'${process.execPath}' '${CLI}' archive-push --repo '${repo}' --stanza main %p`;
    await base.sql(`alter system set archive_command = '${command.replace(/'/g, "''")}'`);
    await base.sql('select pg_reload_conf()');
    const src = base;
    const env = clusterEnv(src);
    const repoArgs = ['--repo', repo, '--stanza', 'main'];

    const created = await runPgpitr(['stanza-create', ...repoArgs], env);
    assert.equal(created.code, 0, created.stderr);
    chownTree(repo); // the archiver runs as the server's user
    const again = await runPgpitr(['stanza-create', ...repoArgs], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already exists/);
    chownTree(repo);

    // A pgbench load that fills several segments.
    const bin = clientToolDir();
    const pgbenchEnv = { ...process.env, ...env };
    const init = await runCommand(join(bin, 'pgbench'), ['-i', '-s', '3', '-q'], { env: pgbenchEnv });
    assert.equal(init.code, 0, init.stderr);
    const load = await runCommand(join(bin, 'pgbench'), ['-T', '3', '-c', '2'], { env: pgbenchEnv });
    assert.equal(load.code, 0, load.stderr);
    const last = (await src.sql<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name'))[0]!.name;
    await waitArchived(src, last);

    await t.test('every archived segment is in the repository and byte-identical after archive-get', async () => {
      const stats = (await src.sql<{ archived: number; failed: number }>('select archived_count::int as archived, failed_count::int as failed from pg_stat_archiver'))[0]!;
      const stored = archivedOnDisk(repo, 'main').filter((f) => SEGMENT.test(f.name));
      assert.ok(stored.length >= 3, `only ${stored.length} segments stored`);
      assert.ok(stats.archived >= stored.length);
      const walDir = join(src.dataDir, 'pg_wal');
      const done = readdirSync(join(walDir, 'archive_status')).filter((f) => f.endsWith('.done')).map((f) => f.replace(/\.done$/, '')).filter((f) => SEGMENT.test(f));
      assert.ok(done.length >= 3);
      const out = src.tempDir('fetched');
      for (const seg of done) {
        assert.ok(stored.some((s) => s.name === seg), `${seg} is marked archived but not in the repository`);
        const r = await runPgpitr(['archive-get', ...repoArgs, seg, join(out, seg)]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(readFileSync(join(out, seg)).equals(readFileSync(join(walDir, seg))), `${seg} differs after archive-get`);
      }
      if (version === 15) {
        // pg_waldump (the machine has 15's) reads what we archived, across segments.
        const sorted = done.sort();
        const r = await runCommand(join(bin, 'pg_waldump'), ['-p', out, '--stats', sorted[0]!, sorted[sorted.length - 2]!]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Total/);
      }
      const missing = await runPgpitr(['archive-get', ...repoArgs, '0000000100000099000000FF', join(out, 'x')]);
      assert.equal(missing.code, 1, missing.stderr);
    });

    await t.test('pushing the same segment again succeeds with a warning', async () => {
      const seg = archivedOnDisk(repo, 'main').find((f) => SEGMENT.test(f.name))!.name;
      const before = archivedOnDisk(repo, 'main');
      const r = await runPgpitr(['archive-push', ...repoArgs, join(src.dataDir, 'pg_wal', seg)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /already archived with the same content/);
      assert.deepEqual(archivedOnDisk(repo, 'main'), before);
    });

    await t.test('different content under an archived name is refused, nothing changes', async () => {
      const seg = archivedOnDisk(repo, 'main').find((f) => SEGMENT.test(f.name))!.name;
      const before = archivedOnDisk(repo, 'main');
      const dir = src.tempDir('forged');
      const data = readFileSync(join(src.dataDir, 'pg_wal', seg));
      data[8 * 1024 * 1024] = data[8 * 1024 * 1024]! ^ 0xff;
      writeFileSync(join(dir, seg), data);
      const r = await runPgpitr(['archive-push', ...repoArgs, join(dir, seg)]);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /already archived with different content/);
      assert.deepEqual(archivedOnDisk(repo, 'main'), before);
    });

    await t.test('a segment from another cluster is refused', async () => {
      const other = await TestCluster.create({ version, name: `other${version}`, fresh: true }); // a system identifier of its own
      await other.sql('select pg_switch_wal()');
      const seg = readdirSync(join(other.dataDir, 'pg_wal')).filter((f) => SEGMENT.test(f)).sort()[0]!;
      const dir = src.tempDir('foreign');
      const foreignName = '0000000700000000000000AA';
      copyFileSync(join(other.dataDir, 'pg_wal', seg), join(dir, foreignName));
      const before = archivedOnDisk(repo, 'main');
      const r = await runPgpitr(['archive-push', ...repoArgs, join(dir, foreignName)]);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /belongs to database system \d+, stanza "main" is for system \d+/);
      assert.deepEqual(archivedOnDisk(repo, 'main'), before);

      // check names the fault on a server with archive_mode off (this other cluster).
      const c = await runPgpitr(['check', '--repo', repo, '--stanza', 'main', '--archive-timeout', '5'], clusterEnv(other));
      assert.equal(c.code, 7, c.stdout + c.stderr);
      assert.match(c.stdout, /FAIL archive_mode: archive_mode is off/);
      assert.match(c.stdout, /FAIL system identifier/);
      await other.stop();
    });

    await t.test('a segment copied or renamed to another segment\'s name is refused, nothing changes', async () => {
      const seg = archivedOnDisk(repo, 'main').find((f) => SEGMENT.test(f.name))!.name;
      const data = readFileSync(join(src.dataDir, 'pg_wal', seg));
      const dir = src.tempDir('renamed');
      const before = archivedOnDisk(repo, 'main');
      const other = seg.slice(0, 22) + ((parseInt(seg.slice(22), 16) + 0x40) % 0x100).toString(16).toUpperCase().padStart(2, '0');
      writeFileSync(join(dir, other), data);
      const moved = await runPgpitr(['archive-push', ...repoArgs, join(dir, other)]);
      assert.equal(moved.code, 5, moved.stderr);
      assert.match(moved.stderr, new RegExp(`WAL file "${other}" is not the segment its name says: its first page header has page address [0-9A-F]+/[0-9A-F]+, the name says [0-9A-F]+/[0-9A-F]+`));
      // Timeline 1 under a name of timeline 1 whose header says timeline 3: a later timeline's segment.
      const lower = `00000001${other.slice(8)}`;
      writeFileSync(join(dir, lower), disguisedAs(data, lower, 3));
      const r = await runPgpitr(['archive-push', ...repoArgs, join(dir, lower)]);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /its first page header has timeline 3, the name says 1/);
      // The same as a .partial file.
      writeFileSync(join(dir, `${other}.partial`), data);
      const partial = await runPgpitr(['archive-push', ...repoArgs, join(dir, `${other}.partial`)]);
      assert.equal(partial.code, 5, partial.stderr);
      assert.match(partial.stderr, /is not the segment its name says/);
      assert.deepEqual(archivedOnDisk(repo, 'main'), before);
    });

    await t.test('a push killed midway leaves nothing visible; the next push stores it', async () => {
      const seg = archivedOnDisk(repo, 'main').find((f) => SEGMENT.test(f.name))!.name;
      const dir = src.tempDir('killed');
      for (let i = 0; i < 8; i++) {
        // Timeline 9 with segments of timeline 1 inside: as the first segment of a new timeline is.
        const name = `0000000900000000000000${(0x10 + i).toString(16).toUpperCase()}`;
        writeFileSync(join(dir, name), disguisedAs(readFileSync(join(src.dataDir, 'pg_wal', seg)), name));
        const child = spawn(process.execPath, [CLI, 'archive-push', ...repoArgs, join(dir, name)], { stdio: 'ignore' });
        const exited = new Promise((r) => child.on('exit', r)); // listen now: the push may finish before the kill
        await new Promise((r) => setTimeout(r, 60 + i * 25));
        child.kill('SIGKILL');
        await exited;
        const fetched = join(dir, `${name}.fetched`);
        const got = await runPgpitr(['archive-get', ...repoArgs, name, fetched]);
        assert.ok(got.code === 0 || got.code === 1, got.stderr);
        if (got.code === 0) assert.ok(readFileSync(fetched).equals(readFileSync(join(dir, name))));
        else assert.ok(!existsSync(fetched));
        // A dead push's file is removed once a minute old (younger, it may be a live push of another container with our host name).
        const archived = join(repo, 'main', 'archive', '0000000900000000');
        const minutesAgo = new Date(Date.now() - 2 * 60 * 1000);
        for (const n of existsSync(archived) ? readdirSync(archived).filter((x) => x.includes('.tmp-')) : []) utimesSync(join(archived, n), minutesAgo, minutesAgo);
        const push = await runPgpitr(['archive-push', ...repoArgs, join(dir, name)]);
        assert.equal(push.code, 0, push.stderr);
      }
      // What the killed pushes left, the next push into the same directory removed.
      assert.deepEqual(readdirSync(join(repo, 'main', 'archive', '0000000900000000')).filter((n) => n.includes('.tmp-')), []);
    });

    await t.test('stale temporary files are counted by info, removed by check and by the next push; a live push\'s are kept', async () => {
      const dir = join(repo, 'main', 'archive', '0000000900000000');
      const stored = readdirSync(dir).find((n) => !n.includes('.tmp-'))!;
      const gone = spawn(process.execPath, ['-e', '']);
      await new Promise((r) => gone.on('exit', r));
      const deadHere = join(dir, `${stored}.tmp-${hostname()}-${gone.pid}-1`);
      const oldForm = join(dir, `${stored}.tmp-${gone.pid}-2`);
      const live = join(dir, `${stored}.tmp-${hostname()}-${process.pid}-3`);
      const otherHostFresh = join(dir, `${stored}.tmp-elsewhere-${gone.pid}-4`);
      const deadFresh = join(dir, `${stored}.tmp-${hostname()}-${gone.pid}-5`);
      for (const p of [deadHere, oldForm, live, otherHostFresh, deadFresh]) writeFileSync(p, 'partial');
      const hoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
      utimesSync(oldForm, hoursAgo, hoursAgo);
      const minutesAgo = new Date(Date.now() - 2 * 60 * 1000);
      utimesSync(deadHere, minutesAgo, minutesAgo);
      // Other commands killed while writing a repository file: the stanza's record, a lock, a lease's stamp.
      mkdirSync(join(repo, 'main', 'restore-lease'), { recursive: true });
      const beyond = [join(repo, 'main', `stanza.json.tmp-${hostname()}-${gone.pid}-6`), join(repo, `repository.lock.tmp-${hostname()}-${gone.pid}-7`), join(repo, 'main', 'restore-lease', `expiring.json.tmp-${hostname()}-${gone.pid}-8`)];
      for (const p of beyond) {
        writeFileSync(p, 'partial');
        utimesSync(p, minutesAgo, minutesAgo);
      }
      const info = await runPgpitr(['info', ...repoArgs, '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      // (The repository's own, at its top, are check's to remove, not any one stanza's to count.)
      assert.equal((JSON.parse(info.stdout) as { stanzas: { stale_temp_files: number }[] }).stanzas[0]!.stale_temp_files, 4);
      assert.match((await runPgpitr(['info', ...repoArgs])).stdout, /stale temporary files: 4 /);
      const check = await runPgpitr(['check', ...repoArgs, '--output', 'json'], env);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      const finding = (JSON.parse(check.stdout) as { checks: { check: string; ok: boolean; count?: number }[] }).checks.find((c) => c.check === 'temporary files');
      assert.deepEqual(finding && { ok: finding.ok, count: finding.count }, { ok: true, count: 5 });
      assert.deepEqual(beyond.filter((p) => existsSync(p)), []);
      // A dead push's file younger than a minute is kept: another container may share our host name, not our pids.
      assert.deepEqual([deadHere, oldForm, live, otherHostFresh, deadFresh].map((p) => existsSync(p)), [false, false, true, true, true]);
      unlinkSync(deadFresh);
      // A push into the directory removes a dead push's file too.
      writeFileSync(deadHere, 'partial');
      utimesSync(deadHere, minutesAgo, minutesAgo);
      const name = '000000090000000000000018'; // right after the killed pushes' segments: no gap
      const seg = archivedOnDisk(repo, 'main').find((f) => SEGMENT.test(f.name) && f.name.startsWith('00000001'))!.name;
      const src2 = src.tempDir('after-kill');
      writeFileSync(join(src2, name), disguisedAs(readFileSync(join(src.dataDir, 'pg_wal', seg)), name));
      const push = await runPgpitr(['archive-push', ...repoArgs, join(src2, name)]);
      assert.equal(push.code, 0, push.stderr);
      assert.deepEqual([deadHere, live, otherHostFresh].map((p) => existsSync(p)), [false, true, true]);
      for (const p of [live, otherHostFresh]) unlinkSync(p);
    });

    await t.test('check passes on the correct set-up and names broken ones', async () => {
      const ok = await runPgpitr(['check', ...repoArgs, '--output', 'json'], env);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const report = JSON.parse(ok.stdout) as { ok: boolean; checks: { check: string; ok: boolean }[] };
      assert.ok(report.ok);
      assert.ok(report.checks.some((c) => c.check === 'archiving' && c.ok));
      // No backup yet: a warning, not a failure (check runs before the first backup); asked for one, a failure.
      assert.ok(report.checks.some((c) => c.check === 'recovery' && c.ok && /warning: the stanza has no complete backup yet/.test((c as { message?: string }).message ?? '')), ok.stdout);
      const wanted = await runPgpitr(['check', ...repoArgs, '--backup-age-max', '26h'], env);
      assert.equal(wanted.code, 7, wanted.stdout + wanted.stderr);
      assert.match(wanted.stdout, /FAIL recovery: the stanza has no complete backup yet/);

      const unreachable = await runPgpitr(['check', '--repo', join(repo, 'nope'), '--stanza', 'main'], env);
      assert.equal(unreachable.code, 7);
      assert.match(unreachable.stdout, /FAIL repository: repository ".*nope" does not exist/);
      // A server it cannot reach is a finding too, said beside the repository's.
      const nowhere = await runPgpitr(['check', '--repo', join(repo, 'nope'), '--stanza', 'main', '-p', '1'], env);
      assert.equal(nowhere.code, 7, nowhere.stdout + nowhere.stderr);
      assert.match(nowhere.stdout, /FAIL repository: repository ".*nope" does not exist/);
      assert.match(nowhere.stdout, /FAIL connection: /);
      // A server out of reach: what the repository alone says is still said (up to its newest segment).
      const down = await runPgpitr(['check', ...repoArgs, '-p', '1', '--backup-age-max', '26h'], env);
      assert.equal(down.code, 7, down.stdout + down.stderr);
      assert.match(down.stdout, /FAIL connection: /);
      assert.match(down.stdout, /ok {3}archive continuity: /);
      assert.match(down.stdout, /FAIL recovery: the stanza has no complete backup yet/);

      await src.sql(`alter system set archive_command = 'cp %p /nowhere/%f'`);
      await src.sql('select pg_reload_conf()');
      await new Promise((r) => setTimeout(r, 300));
      // Not pgpitr's text: judged by the WAL switch (it fails there, quickly: the archiver fails three times in a row).
      const wrong = await runPgpitr(['check', ...repoArgs], env);
      assert.equal(wrong.code, 7);
      assert.match(wrong.stdout, /ok   archive_command: archive_command is 'cp %p \/nowhere\/%f' \(not pgpitr archive-push as far as its text tells/);
      assert.match(wrong.stdout, /FAIL archiving.*did not reach the repository.*pg_stat_archiver: \d+ failures/);
      // pgpitr for another stanza: wrong by its text.
      await src.sql(`alter system set archive_command = '${command.replace(/--stanza[= ]'?main'?/, '--stanza other').replace(/'/g, "''")}'`);
      await src.sql('select pg_reload_conf()');
      await new Promise((r) => setTimeout(r, 300));
      const other = await runPgpitr(['check', ...repoArgs], env);
      assert.equal(other.code, 7);
      assert.match(other.stdout, /FAIL archive_command/);
      assert.match(other.stdout, /hint: set archive_command = 'pgpitr archive-push/);
      // What the repository alone says is still said.
      assert.match(other.stdout, /archive continuity: /);
      await src.sql(`alter system set archive_command = '${command.replace(/'/g, "''")}'`);
      await src.sql('select pg_reload_conf()');
      // A stanza of another WAL segment size (the cluster's changed by pg_resetwal --wal-segsize keeps
      // its system identifier, and every archive-push then fails): a failure, not a pass on an old
      // segment of the same name.
      const record = join(repo, 'main', 'stanza.json');
      const saved = readFileSync(record, 'utf8');
      writeFileSync(record, saved.replace(/("wal_segment_size":\s*)\d+/, '$167108864'));
      try {
        const size = await runPgpitr(['check', ...repoArgs], env);
        assert.equal(size.code, 7, size.stdout + size.stderr);
        assert.match(size.stdout, /FAIL system identifier: the server has WAL segments of 16777216 bytes, the stanza's are of 67108864 \(stanza "main"\)/);
      } finally {
        writeFileSync(record, saved);
      }
    });

    await t.test('info reports the archive per timeline, with gaps', async () => {
      const r = await runPgpitr(['info', '--repo', repo, '--output', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const info = JSON.parse(r.stdout) as { stanzas: { stanza: string; archive: { timelines: { timeline: number; min: string; max: string; gaps: unknown[] }[]; last_archived: { name: string } } }[] };
      const main = info.stanzas.find((s) => s.stanza === 'main')!;
      const tl1 = main.archive.timelines.find((x) => x.timeline === 1)!;
      assert.deepEqual(tl1.gaps, []);
      assert.ok(tl1.max >= last);
      const tl9 = main.archive.timelines.find((x) => x.timeline === 9)!;
      assert.equal(tl9.min, '000000090000000000000010');
      const text = await runPgpitr(['info', '--repo', repo]);
      assert.match(text.stdout, /timeline 1: 0000000100000000000000\w\w \.\.\. /);
    });
  });
}
