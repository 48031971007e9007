// An expire killed (SIGKILL) at any moment of its work, on a real stanza: full
// A, incr B on A, full C, incr D on C, with WAL archived between them, under
// retention-full 1 (B and A go, and the WAL before C's start). Each kill comes
// on a fresh copy of the repository, at a moment spread over an expire's own
// duration or just after one of its steps is seen on disk (a record gone, a
// set gone, the first WAL file gone), a little later by a random amount.
// After each kill: info lists no backup whose set is partly removed (every
// listed complete backup's set is whole and passes verify --set; C and D
// always are listed), and a second expire ends with exactly the repository an
// uninterrupted expire leaves (the same backups, the same archived WAL, the
// same files; no set directory without a record). D, the newest incr, restores
// from a re-expired copy to the data of its moment: expire never removed what
// a kept backup needs. The kill windows are pgpitr's own: the newest tested
// version proves them.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { destroyAll } from '../harness/cluster.js';
import { tableChecksums } from '../harness/data.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { runCommand } from '../harness/run.js';
import { archivedOnDisk } from '../helpers/archiving.js';
import { runPgpitr, CLI } from '../helpers/pgpitr.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived } from '../helpers/pitr.js';
import type { ArchivingCluster } from '../helpers/pitr.js';

interface Record {
  id: string;
  type: 'full' | 'diff' | 'incr';
  state: string;
  prior: string | null;
  references?: string[];
  start_wal: string;
  stop_wal: string;
}

interface ExpireOutput {
  keep: { id: string }[];
  expire: { id: string }[];
  wal_removed: { first: string; last: string; count: number } | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Every file and directory below root, relative, sorted (the lock file is gone once an expire ends).
 * Left out: the temporary file of an expire killed while it wrote the lock (<lock>.tmp-<host>-<pid>-<n>),
 * which the next lock holder removes once it is a minute old (repo/lock.ts).
 */
function treeOf(root: string): string[] {
  // The stamp an expire that removed something leaves (restore-lease.ts) is no stored data: one killed before it has none.
  return (readdirSync(root, { recursive: true }) as string[]).filter((n) => !/\.lock\.tmp-/.test(n) && !/restore-lease\/expired\.json/.test(n)).sort();
}

/** The archived WAL of a repository copy, as stored names (segment, checksum, extension). */
function archiveOf(repo: string): string[] {
  return archivedOnDisk(repo, 'main').map((f) => `${f.name}-${f.sha256}${f.extension}`);
}

function setDir(repo: string, id: string): string {
  return join(repo, 'main', 'backup', id);
}

/** The repository options of a copy of the stanza's repository (posix). */
function copyOf(a: ArchivingCluster, repo: string): ArchivingCluster {
  return { ...a, repo, repoArgs: ['--repo', repo, '--stanza', 'main'] };
}

async function copyRepo(from: string, to: string): Promise<void> {
  // -a: the owners too (the archive is the server user's, the sets the user who ran backup).
  const r = await runCommand('cp', ['-a', from, to]);
  assert.equal(r.code, 0, r.stderr);
}

for (const version of versionsFromEnv().slice(-1)) {
  test(`expire killed at any moment: the next run sees whole backups only and finishes the job (PostgreSQL ${version})`, async (t) => {
    t.after(destroyAll);
    const t0 = Date.now();
    const step = (what: string) => t.diagnostic(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const a = await archivingCluster(version, `exk${version}`);
    const { c } = a;
    const env = c.connectionEnv();
    await c.sql('create table t (id int primary key, v text)');
    await c.sql(`insert into t select g, md5(g::text) from generate_series(1, 20000) g`);
    // An incr takes from its prior backup only the files last written over a second before that
    // backup started: the new cluster's files have to age a little for B to need A.
    await c.sql('checkpoint');
    await sleep(2500);

    const backup = async (type: 'full' | 'incr'): Promise<Record> => {
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json', '--type', type], env);
      assert.equal(r.code, 0, `backup --type ${type}: ${r.stderr}`);
      const record = JSON.parse(r.stdout) as Record;
      assert.equal(record.state, 'complete');
      assert.equal(record.type, type);
      return record;
    };
    const A = await backup('full');
    await c.sql(`update t set v = 'B' where id % 10 = 0`);
    const B = await backup('incr');
    // WAL that only A and B need: expire removes it with them.
    for (let i = 0; i < 4; i++) {
      await c.sql(`insert into t select g, 'wal' from generate_series(${20001 + i * 1000}, ${20000 + (i + 1) * 1000}) g`);
      await switchAndWaitArchived(c);
    }
    const C = await backup('full');
    await c.sql(`update t set v = 'D' where id % 7 = 0`);
    await c.sql(`create table t2 as select g as id, md5((-g)::text) as v from generate_series(1, 3000) g`);
    const wantD = await tableChecksums(c);
    const D = await backup('incr');
    await switchAndWaitArchived(c);
    assert.equal(B.prior, A.id);
    assert.ok(B.references?.includes(A.id), `${B.id} references ${JSON.stringify(B.references)}`);
    assert.equal(D.prior, C.id);
    assert.ok(D.references?.includes(C.id), `${D.id} references ${JSON.stringify(D.references)}`);
    step(`backups ${A.id} ${B.id} ${C.id} ${D.id} taken`);

    // The repository as it stands, copied once: every run below starts from a copy of this one
    // (the server goes on archiving into a.repo).
    const pristine = join(c.tempDir('pristine'), 'repo');
    await copyRepo(a.repo, pristine);
    const archived = archiveOf(pristine);
    const doomed = archived.filter((n) => !n.slice(0, 24).includes('.') && n.slice(8, 24) < C.start_wal.slice(8, 24));
    assert.ok(doomed.length >= 5, `only ${doomed.length} archived WAL file(s) before ${C.start_wal}: ${archived.join(', ')}`);
    // Less the mark an expire killed before it removed the record leaves (repo/backup-set/unrecorded.ts:
    // the set is still that backup; the next expire removes it).
    const filesOf = (repo: string, id: string) => treeOf(setDir(repo, id)).filter((n) => !/^expiring(\.tmp-.*)?$/.test(n));
    const whole = new Map([A, B, C, D].map((b) => [b.id, filesOf(pristine, b.id)]));

    // An uninterrupted expire, and how long it takes here.
    const clean = join(c.tempDir('clean'), 'repo');
    await copyRepo(pristine, clean);
    const tStart = Date.now();
    const first = await runPgpitr(['expire', '--repo', clean, '--stanza', 'main', '--retention-full', '1', '--output', 'json']);
    const took = Date.now() - tStart;
    assert.equal(first.code, 0, first.stderr);
    const done = JSON.parse(first.stdout) as ExpireOutput;
    assert.deepEqual(done.keep.map((k) => k.id).sort(), [C.id, D.id].sort(), first.stdout);
    assert.deepEqual(done.expire.map((e) => e.id), [B.id, A.id], `${first.stdout}: the incr goes before the full backup it needs`);
    assert.equal(done.wal_removed?.count, doomed.length, first.stdout);
    const expected = { sets: [C.id, D.id].sort(), archive: archived.filter((n) => !doomed.includes(n)), tree: treeOf(clean) };
    assert.deepEqual(readdirSync(join(clean, 'main', 'backup')).sort(), expected.sets);
    assert.deepEqual(archiveOf(clean), expected.archive);
    assert.ok(expected.archive.some((n) => n.startsWith(C.start_wal)) && expected.archive.some((n) => n.startsWith(D.stop_wal)), expected.archive.join(', '));
    step(`uninterrupted expire: ${took} ms, ${doomed.length} WAL files removed`);

    /** What a killed expire had done: each expired set's record and files, the WAL it removed. */
    const stateOf = (repo: string): string => {
      const set = (id: string) => {
        const dir = setDir(repo, id);
        if (!existsSync(dir)) return 'gone';
        const left = treeOf(dir).length;
        const record = existsSync(join(dir, 'backup.json')) ? 'record' : 'no record';
        return `${record}, ${left === whole.get(id)!.length ? 'whole' : `${left} of ${whole.get(id)!.length} entries`}`;
      };
      const walLeft = archiveOf(repo).filter((n) => doomed.includes(n)).length;
      return `${B.id} (B): ${set(B.id)}; ${A.id} (A): ${set(A.id)}; WAL to remove left: ${walLeft} of ${doomed.length}`;
    };
    const untouched = stateOf(pristine);
    const finished = stateOf(clean);

    // When each kill comes: a share of an expire's duration, or just after a step is seen on disk,
    // each a random bit later (busy-waited, in microseconds).
    const kills: { what: string; share?: number; when?: (repo: string) => boolean }[] = [
      { what: '0.55 of an expire', share: 0.55 },
      { what: '0.7 of an expire', share: 0.7 },
      { what: "B's record gone", when: (r) => !existsSync(join(setDir(r, B.id), 'backup.json')) },
      { what: "B's record gone", when: (r) => !existsSync(join(setDir(r, B.id), 'backup.json')) },
      { what: "B's set gone", when: (r) => !existsSync(setDir(r, B.id)) },
      { what: "A's record gone", when: (r) => !existsSync(join(setDir(r, A.id), 'backup.json')) },
      { what: "A's record gone", when: (r) => !existsSync(join(setDir(r, A.id), 'backup.json')) },
      // (not archiveOf: it stats what it lists, and the files go meanwhile)
      { what: 'the first WAL file gone', when: (r) => doomed.some((n) => !existsSync(join(r, 'main', 'archive', n.slice(0, 16), n))) },
      { what: '0.85 of an expire', share: 0.85 },
    ];
    const states = new Set<string>();
    let last = '';
    for (const [i, k] of kills.entries()) {
      const repo = join(c.tempDir(`kill${i}`), 'repo');
      await copyRepo(pristine, repo);
      const extraUs = Math.floor(Math.random() * 1500);
      const child = spawn(process.execPath, [CLI, 'expire', '--repo', repo, '--stanza', 'main', '--retention-full', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      let exited = false;
      const end = new Promise<{ code: number | null; signal: string | null }>((res) =>
        child.on('exit', (code, signal) => {
          exited = true;
          res({ code, signal });
        }),
      );
      if (k.share !== undefined) await sleep(Math.round(took * k.share));
      else while (!exited && !k.when!(repo)) await new Promise((r) => setImmediate(r));
      const until = process.hrtime.bigint() + BigInt(extraUs) * 1000n;
      while (process.hrtime.bigint() < until);
      child.kill('SIGKILL');
      const ended = await end;
      // Ended by the kill, not by a failure of its own (or it had finished: then it is whole).
      if (ended.code !== 0) assert.equal(ended.signal, 'SIGKILL', `the expire killed after ${k.what} exited with ${ended.code}: ${stderr}`);
      const state = stateOf(repo);
      states.add(state);
      t.diagnostic(`kill ${i} after ${k.what} +${extraUs} us: ${ended.code === 0 ? 'had finished' : state}`);

      // What the next run sees: whole backups only, C and D among them.
      const info = await runPgpitr(['info', '--repo', repo, '--stanza', 'main', '--output', 'json']);
      assert.equal(info.code, 0, info.stderr);
      const listed = (JSON.parse(info.stdout) as { stanzas: { backups: { id: string; state: string }[] }[] }).stanzas[0]!.backups;
      for (const id of [C.id, D.id]) assert.equal(listed.find((b) => b.id === id)?.state, 'complete', `${id} after kill ${i} (${state}): ${info.stdout}`);
      for (const b of listed) {
        assert.ok(whole.has(b.id), `kill ${i}: info lists ${b.id}, not one of the backups taken`);
        if (b.state !== 'complete') continue;
        assert.deepEqual(filesOf(repo, b.id), whole.get(b.id), `kill ${i} (${state}): info lists ${b.id} as complete, its set is not whole`);
        const v = await runPgpitr(['verify', '--repo', repo, '--stanza', 'main', '--set', b.id]);
        assert.equal(v.code, 0, `kill ${i} (${state}): verify --set ${b.id}: ${v.stdout}${v.stderr}`);
      }

      // And the next expire finishes the job: exactly what an uninterrupted one leaves.
      const again = await runPgpitr(['expire', '--repo', repo, '--stanza', 'main', '--retention-full', '1', '--output', 'json']);
      assert.equal(again.code, 0, `expire after kill ${i} (${state}): ${again.stderr}`);
      assert.deepEqual((JSON.parse(again.stdout) as ExpireOutput).keep.map((x) => x.id).sort(), [C.id, D.id].sort(), again.stdout);
      const after = await runPgpitr(['info', '--repo', repo, '--stanza', 'main', '--output', 'json']);
      assert.equal(after.code, 0, after.stderr);
      assert.deepEqual((JSON.parse(after.stdout) as { stanzas: { backups: { id: string }[] }[] }).stanzas[0]!.backups.map((b) => b.id).sort(), expected.sets, `kill ${i} (${state})`);
      const sets = readdirSync(join(repo, 'main', 'backup')).sort();
      assert.deepEqual(sets, expected.sets, `kill ${i} (${state}): set directories after the second expire`);
      for (const id of sets) assert.ok(statSync(join(setDir(repo, id), 'backup.json')).isFile(), `kill ${i}: ${id} has no record`);
      assert.deepEqual(archiveOf(repo), expected.archive, `kill ${i} (${state}): archived WAL after the second expire`);
      assert.deepEqual(treeOf(repo), expected.tree, `kill ${i} (${state}): the repository after the second expire`);
      last = repo;
    }
    const midway = [...states].filter((s) => s !== untouched && s !== finished);
    step(`${kills.length} kills: ${midway.length} distinct state(s) between untouched and finished`);
    // The window this test is for: a set left without its record (info must not list it, the next expire removes it).
    assert.ok(midway.some((s) => s.includes('no record')), `no kill left a set without its record:\n${[...states].join('\n')}`);

    // D restores from a re-expired copy: nothing it needs (C's files, its WAL) was removed.
    const dir = restoreDir(c, 'restore-d');
    const r = await restoreWith(copyOf(a, last), dir, ['--set', D.id, '--target-immediate', '--target-action', 'promote']);
    assert.equal(r.code, 0, r.stderr);
    const copy = await startRecovered(dir, version, `exkd${version}`);
    try {
      assert.deepEqual(await tableChecksums(copy), wantD, copy.logTail());
    } finally {
      await copy.destroy();
    }
    step(`restored ${D.id}`);
  });
}
