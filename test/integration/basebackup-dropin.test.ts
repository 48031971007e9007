// A pg_basebackup user swaps the command name and keeps the line: what they
// find afterwards must be what pg_basebackup leaves (a slot's restart_lsn, the
// source's file modes, a kept directory after a checksum failure, WARNING lines),
// and the state file must tell the truth about a failed run (full disk, -n).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, lstatSync, openSync, readdirSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../harness/cluster.js';
import { createSampleData } from '../harness/data.js';
import { versionsFromEnv, clientToolDir } from '../harness/pg-versions.js';
import { runCommand, isRoot } from '../harness/run.js';
import { runPgpitr, clusterEnv, readState } from '../helpers/pgpitr.js';

/** The distinct permission strings of the members of a tar file (tar -tv). */
async function memberModes(tarFile: string): Promise<string[]> {
  const r = await runCommand('tar', ['-tvf', tarFile]);
  assert.equal(r.code, 0, r.stderr);
  return [...new Set(r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]!))].sort();
}

/** member name (without "./" and a trailing "/") → permission string, for the members of a tar file. */
async function memberModeMap(tarFile: string): Promise<Map<string, string>> {
  const r = await runCommand('tar', ['-tvf', tarFile]);
  assert.equal(r.code, 0, r.stderr);
  const out = new Map<string, string>();
  for (const line of r.stdout.trim().split('\n')) {
    const fields = line.split(/\s+/);
    out.set(fields.slice(5).join(' ').replace(/^\.\//, '').replace(/\/$/, ''), fields[0]!);
  }
  return out;
}

/** The entries both maps have whose values differ (what two runs taken moments apart both hold must agree). */
function differing(ours: Map<string, string>, judge: Map<string, string>): string[] {
  return [...ours].filter(([k, v]) => judge.has(k) && judge.get(k) !== v).map(([k, v]) => `${k}: ours ${v}, pg_basebackup ${judge.get(k)}`);
}

/** relative path → permission bits, for every directory and file under `root` (links skipped). */
function modesOf(root: string, skip: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const st = lstatSync(join(root, rel));
    if (st.isSymbolicLink()) return;
    if (rel !== '' && skip(rel)) return;
    const mode = (st.mode & 0o777).toString(8);
    // Segment names differ between two runs: keep one entry per distinct mode.
    out.set((rel || '.').replace(/[0-9A-F]{24}$/, `SEGMENT(${mode})`), mode);
    if (st.isDirectory()) for (const n of readdirSync(join(root, rel))) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

for (const version of versionsFromEnv()) {
  test(`basebackup behaves as pg_basebackup where users look (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `dropin${version}` });
    await createSampleData(src, { rows: 20000 });
    const env = clusterEnv(src);
    const pgBasebackup = version === 15 ? join(clientToolDir(), 'pg_basebackup') : null;

    await t.test('-X stream -S existing_slot: the slot holds WAL from the backup on', async () => {
      await src.sql("select pg_create_physical_replication_slot('unreserved')");
      const out = join(src.tempDir('slot'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-X', 'stream', '-S', 'unreserved', '-c', 'fast'], env);
      assert.equal(r.code, 0, r.stderr);
      const start = String(readState(out).start_lsn);
      const [row] = await src.sql(`select restart_lsn::text as lsn, restart_lsn >= '${start}'::pg_lsn as after_start from pg_replication_slots where slot_name = 'unreserved'`);
      assert.notEqual(row?.lsn, null, 'restart_lsn is still NULL: no flush position was reported');
      assert.equal(row?.after_start, true, `restart_lsn ${row?.lsn} is before the backup's start ${start}`);
      if (pgBasebackup) {
        // The judge: pg_basebackup's line against the same server moves its slot as far.
        await src.sql("select pg_create_physical_replication_slot('judge')");
        const j = await runCommand(pgBasebackup, ['-D', join(src.tempDir('slot-judge'), 'b'), '-X', 'stream', '-S', 'judge', '-c', 'fast'], { env: { ...process.env, ...env } });
        assert.equal(j.code, 0, j.stderr);
        const [jr] = await src.sql("select restart_lsn is not null as set from pg_replication_slots where slot_name = 'judge'");
        assert.equal(jr?.set, true);
        await src.sql("select pg_drop_replication_slot('judge')");
      }
      await src.sql("select pg_drop_replication_slot('unreserved')");
    });

    await t.test('a full disk under -n: the state file says failed, with the reason', { skip: !isRoot() && 'needs root to mount a tmpfs' }, async () => {
      const mnt = src.tempDir('small');
      const m = await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
      assert.equal(m.code, 0, `cannot mount a tmpfs: ${m.stderr}`);
      try {
        const out = join(mnt, 'b');
        const r = await runPgpitr(['basebackup', '-D', out, '-n', '-c', 'fast'], env);
        assert.equal(r.code, 5, r.stderr);
        const state = readState(out);
        assert.equal(state.status, 'failed', JSON.stringify(state));
        assert.match(String(state.error), /No space left on device|ENOSPC/);
        const st = await runPgpitr(['status', out]);
        assert.equal(st.code, 11, st.stdout + st.stderr);
      } finally {
        await runCommand('umount', [mnt]);
      }
    });

    await t.test('a 0644 pg_hba.conf stays 0644 in a plain backup, one stream and -j 2 (the tar header\'s mode, as pg_basebackup)', async () => {
      chmodSync(join(src.dataDir, 'pg_hba.conf'), 0o644);
      const statusFile = (rel: string) => /^pg_wal\/archive_status\/./.test(rel);
      let judge: Map<string, string> | null = null;
      if (pgBasebackup) {
        const dir = join(src.tempDir('mode-judge'), 'b');
        const j = await runCommand(pgBasebackup, ['-D', dir, '-Fp', '-X', 'stream', '-c', 'fast'], { env: { ...process.env, ...env } });
        assert.equal(j.code, 0, j.stderr);
        judge = modesOf(dir, statusFile);
        assert.equal(judge.get('pg_hba.conf'), '644');
      }
      for (const jobs of [[], ['-j', '2', '--read-method', 'direct']]) {
        const out = join(src.tempDir(`mode${jobs.length}`), 'b');
        const r = await runPgpitr(['basebackup', '-D', out, '-Fp', '-X', 'stream', '-c', 'fast', ...jobs], env);
        assert.equal(r.code, 0, r.stderr);
        const ours = modesOf(out, statusFile);
        const how = jobs.length ? '-j 2' : 'one stream';
        assert.equal(ours.get('pg_hba.conf'), '644', how);
        assert.equal(ours.get('postgresql.conf'), '600', how);
        assert.equal(ours.get('backup_label'), '600', how);
        if (judge) assert.deepEqual(differing(ours, judge), [], how);
      }
    });

    // Last: it corrupts a page of the source.
    await t.test('a page checksum failure keeps the directory, state failed, WARNING lines', async () => {
      await src.sql('create table broken (id int, filler text); insert into broken select g, repeat(\'x\', 100) from generate_series(1, 100) g; checkpoint');
      const [rel] = await src.sql("select pg_relation_filepath('broken') as path");
      await src.stop('fast');
      const fd = openSync(join(src.dataDir, String(rel?.path)), 'r+');
      writeSync(fd, Buffer.from('corrupted!'), 0, 10, 4000); // inside page 0, past its header
      closeSync(fd);
      await src.start();
      const out = join(src.tempDir('checksum'), 'b');
      const r = await runPgpitr(['basebackup', '-D', out, '-c', 'fast'], env);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /checksum verification failure during base backup/);
      assert.ok(existsSync(join(out, 'PG_VERSION')), 'the data directory was removed');
      const state = readState(out);
      assert.equal(state.status, 'failed');
      assert.match(String(state.error), /checksum verification failure/);
      const failures = state.checksum_failures as string[];
      assert.ok(failures.some((f) => f.includes(String(rel?.path)) && /block 0/.test(f)), JSON.stringify(failures));
      const st = await runPgpitr(['status', out]);
      assert.equal(st.code, 11, st.stdout + st.stderr);
      assert.match(st.stdout, /block 0/);
      // The server's warnings as pg_basebackup prints them (libpq): scripts grep ^WARNING:
      assert.match(r.stderr, /^WARNING: {2}checksum verification failed in file ".*", block 0: calculated [0-9A-F]+ but expected [0-9A-F]+$/m);
    });
  });

  test(`group access (initdb -g): the backup keeps the source's modes (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const src = await TestCluster.create({ version, name: `group${version}`, initdbArgs: ['-g'] });
    const env = clusterEnv(src);
    const [row] = await src.sql('show data_directory_mode');
    assert.equal(row?.data_directory_mode, '0750');
    const pgBasebackup = version === 15 ? join(clientToolDir(), 'pg_basebackup') : null;
    // A file of the source with a mode of its own keeps it (pg_basebackup chmods to the tar header's).
    chmodSync(join(src.dataDir, 'postgresql.conf'), 0o644);
    const judges = new Map<string, string>(); // format → pg_basebackup's backup of it

    for (const [format, jobs] of [['plain', 1], ['plain', 2], ['tar', 1], ['tar', 2]] as const) {
      await t.test(`-F ${format} -X stream${jobs > 1 ? ` -j ${jobs}` : ''}`, async () => {
        const out = join(src.tempDir(`g-${format}-${jobs}`), 'b');
        const parallel = jobs > 1 ? ['-j', String(jobs), '--read-method', 'direct'] : [];
        const r = await runPgpitr(['basebackup', '-D', out, '-F', format, '-X', 'stream', '-c', 'fast', ...parallel], env);
        assert.equal(r.code, 0, r.stderr);
        const ours = modesOf(out);
        assert.equal(ours.get('pgpitr_backup.state'), '640');
        ours.delete('pgpitr_backup.state');
        if (pgBasebackup) {
          let judge = judges.get(format);
          if (judge === undefined) {
            judge = join(src.tempDir(`g-${format}-judge`), 'b');
            const j = await runCommand(pgBasebackup, ['-D', judge, '-F', format, '-X', 'stream', '-c', 'fast'], { env: { ...process.env, ...env } });
            assert.equal(j.code, 0, j.stderr);
            judges.set(format, judge);
          }
          // Whether a streamed segment completed (and got its .done) depends on when each run
          // started in its segment: those files' modes are checked below, not their presence.
          const statusFile = (rel: string) => /^pg_wal\/archive_status\/./.test(rel);
          const compared = modesOf(out, statusFile);
          compared.delete('pgpitr_backup.state');
          const judged = modesOf(judge, statusFile);
          // -j copies moments after the judge's stream: what both hold must agree (presence is checked elsewhere).
          if (jobs === 1) assert.deepEqual(Object.fromEntries(compared), Object.fromEntries(judged));
          else assert.deepEqual(differing(compared, judged), []);
          if (format === 'tar') {
            assert.deepEqual(await memberModes(join(out, 'pg_wal.tar')), await memberModes(join(judge, 'pg_wal.tar')));
            assert.deepEqual(differing(await memberModeMap(join(out, 'base.tar')), await memberModeMap(join(judge, 'base.tar'))), []);
          }
        }
        // pg_basebackup writes pg_wal.tar's members 0600 whatever the source's mode (walmethods.c).
        if (format === 'tar') assert.deepEqual(await memberModes(join(out, 'pg_wal.tar')), ['-rw-------']);
        // backup_label (and tablespace_map in a tar file) as the server makes them: pg_file_create_mode.
        if (format === 'tar') {
          const members = await memberModeMap(join(out, 'base.tar'));
          assert.equal(members.get('backup_label'), '-rw-r-----');
          assert.equal(members.get('tablespace_map'), '-rw-r-----');
          assert.equal(members.get('postgresql.conf'), '-rw-r--r--');
        }
        for (const [rel, mode] of ours) {
          const isDir = !rel.includes('SEGMENT(') && lstatSync(join(out, rel)).isDirectory();
          const expected = rel === 'postgresql.conf' ? '644' : isDir ? '750' : '640';
          assert.equal(mode, expected, `${rel} has mode ${mode}`);
        }
        if (format === 'plain') assert.ok(ours.has('backup_label') && ours.has('postgresql.conf'), 'backup_label or postgresql.conf missing');
        for (const must of format === 'plain' ? ['.', 'pg_wal', 'pg_wal/archive_status', 'backup_manifest'] : ['.', 'base.tar', 'pg_wal.tar', 'backup_manifest']) {
          assert.ok(ours.has(must), `${must} missing`);
        }
        if (format === 'plain') assert.ok(ours.has('pg_wal/SEGMENT(640)'), 'no streamed segment');
      });
    }
  });
}
