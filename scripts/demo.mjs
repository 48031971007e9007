// The README's first command: a throwaway PostgreSQL 15 cluster with some data,
// a `pgpitr basebackup` with progress shown, the backup checked by
// pg_verifybackup and started as a cluster that holds the same data.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, destroyAll } from '../dist/test/harness/cluster.js';
import { runPgbenchInit, tableChecksums } from '../dist/test/harness/data.js';
import { clientToolDir } from '../dist/test/harness/pg-versions.js';
import { chownTree } from '../dist/test/helpers/pgpitr.js';

const root = new URL('..', import.meta.url).pathname;
const setup = spawnSync('bash', [join(root, 'scripts/setup-test-env.sh')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(1);

const say = (m) => console.log(`\n== ${m}`);
try {
  say('starting a throwaway PostgreSQL 15 cluster and loading pgbench data (scale 20)');
  const src = await TestCluster.create({ version: 15, name: 'demo' });
  await runPgbenchInit(src, 20);
  const target = join(src.tempDir('backups'), 'demo-backup');
  say(`pgpitr basebackup -D ${target} -Fp -Xstream -c fast -P -v`);
  const r = spawnSync(process.execPath, [join(root, 'dist/src/cli/main.js'), 'basebackup', '-D', target, '-Fp', '-Xstream', '-c', 'fast', '-P', '-v'], {
    stdio: 'inherit',
    env: { ...process.env, ...src.connectionEnv() },
  });
  if (r.status !== 0) throw new Error(`pgpitr basebackup exited with ${r.status}`);
  say(`pgpitr status ${target}`);
  spawnSync(process.execPath, [join(root, 'dist/src/cli/main.js'), 'status', target], { stdio: 'inherit' });
  say('pg_verifybackup (PostgreSQL\'s own judge)');
  const v = spawnSync(join(clientToolDir(), 'pg_verifybackup'), ['-i', 'pgpitr_backup.state', target], { stdio: 'inherit' });
  if (v.status !== 0) throw new Error('pg_verifybackup rejected the backup');
  say('starting the backup as a cluster and comparing every table with the source');
  chownTree(target);
  const restored = await TestCluster.startExisting(target, 15, { name: 'demo-restored' });
  const [a, b] = [await tableChecksums(src), await tableChecksums(restored)];
  const same = JSON.stringify(a) === JSON.stringify(b);
  for (const [t, sum] of Object.entries(b)) console.log(`  ${t.padEnd(28)} ${sum.split(':')[0]} rows  ${a[t] === sum ? 'identical' : 'DIFFERENT'}`);
  if (!same) throw new Error('restored data differs from the source');
  say('demo complete: the backup verified, started, and holds exactly the source data');
} catch (e) {
  console.error(`demo failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await destroyAll();
}
