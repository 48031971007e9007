// Restore leases against a real server and repository: expire keeps a backup
// a restore has restored until the restored copy's recovery has ended (it
// says why), and lets it go after; a restore killed (SIGKILL) once it has taken
// its lease leaves a lease the next expire sees as stale, removes, and expires
// past. Leases are the repository's own logic, the same on every version: the
// newest tested version proves it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { destroyAll } from '../harness/cluster.js';
import { versionsFromEnv } from '../harness/pg-versions.js';
import { archivingCluster, restoreDir, restoreWith, startRecovered, switchAndWaitArchived } from '../helpers/pitr.js';
import { runPgpitr, CLI } from '../helpers/pgpitr.js';

type Decision = { keep: { id: string; why: string }[]; expire: { id: string }[] };

for (const version of versionsFromEnv().slice(-1)) {
  test(`expire keeps a backup while a restore of it and the recovery after it need it; a killed restore's lease goes (PostgreSQL ${version})`, { timeout: 600_000 }, async (t) => {
    t.after(destroyAll);
    const a = await archivingCluster(version, `rlease${version}`);
    const { c } = a;
    const env = c.connectionEnv();
    await c.sql('create table pitr (id int primary key, v text)');
    const backup = async () => {
      await c.sql(`insert into pitr select g, 'v' from generate_series((select coalesce(max(id), 0) + 1 from pitr), (select coalesce(max(id), 0) + 1000 from pitr)) g`);
      const r = await runPgpitr(['backup', ...a.repoArgs, '--start-fast', '--output', 'json'], env);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { id: string }).id;
    };
    const old = await backup();
    await switchAndWaitArchived(c);
    const newest = await backup();
    await switchAndWaitArchived(c);
    const leases = () => (existsSync(join(a.repo, 'main', 'restore-lease')) ? readdirSync(join(a.repo, 'main', 'restore-lease')).filter((n) => n !== 'expired.json') : []);
    const expire = async (dry: boolean): Promise<Decision> => {
      const r = await runPgpitr(['expire', ...a.repoArgs, '--retention-full', '1', '--output', 'json', ...(dry ? ['--dry-run'] : [])]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Decision;
    };

    // Restored, not started yet: its recovery will fetch the WAL after the backup.
    const dir = restoreDir(c, 'restored');
    const r = await restoreWith(a, dir, ['--set', old, '--target-immediate', '--target-action', 'promote']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(leases().length, 1, 'the restore left a lease holding its backup for the recovery');
    const held = await expire(false);
    assert.deepEqual(held.expire, []);
    assert.match(held.keep.find((k) => k.id === old)!.why, new RegExp(`^being restored: a restore by pid \\d+ on .*, held for its recovery in ${dir} until that ends`));
    assert.ok(existsSync(join(a.repo, 'main', 'backup', old)));
    const info = await runPgpitr(['info', ...a.repoArgs, '--output', 'json']);
    const shown = (JSON.parse(info.stdout) as { stanzas: { backups: { id: string; restoring: string[] }[] }[] }).stanzas[0]!.backups;
    assert.equal(shown.find((b) => b.id === old)!.restoring.length, 1, info.stdout);
    assert.deepEqual(shown.find((b) => b.id === newest)!.restoring, []);
    assert.match((await runPgpitr(['info', ...a.repoArgs])).stdout, new RegExp(`backup ${old}: complete.*\\n +being restored \\(expire keeps it\\): a restore by pid \\d+`));

    // Recovered (recovery.signal gone): the backup is free to go.
    const copy = await startRecovered(dir, version, `rlease-copy${version}`);
    await copy.destroy();
    assert.deepEqual((await expire(true)).expire.map((e) => e.id), [old]);

    // A restore killed once it holds a lease (the first moment it writes anything): that lease is stale.
    const killedDir = restoreDir(c, 'killed');
    const child = spawn(process.execPath, [CLI, 'restore', ...a.repoArgs, '--spool-path', a.spool, '-D', killedDir, '--set', old, '--target-immediate'], { stdio: 'ignore' });
    const exited = new Promise<{ code: number | null; signal: string | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
    const before = new Set(leases());
    // Once a lease is in place (renamed from its temporary file: a temporary file left by a kill in
    // that instant stays for DEAD_TEMP_AGE_MS, as another container's live write might have its pid).
    for (let i = 0; i < 3000 && leases().every((n) => before.has(n) || !n.endsWith('.json')); i++) await new Promise((res) => setTimeout(res, 5));
    child.kill('SIGKILL');
    const end = await exited;
    t.diagnostic(`restore ended by ${end.signal ?? `exit ${end.code}`} with leases ${leases().join(', ')}`);
    const gone = await expire(false);
    assert.deepEqual(gone.expire.map((e) => e.id), [old]);
    assert.deepEqual(leases(), [], 'stale leases removed, no marker left');
    assert.ok(!existsSync(join(a.repo, 'main', 'backup', old)));
    assert.ok(existsSync(join(a.repo, 'main', 'backup', newest)));
  });
}
