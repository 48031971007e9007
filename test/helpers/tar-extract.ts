// Unpacks a tar-format backup with the system's tar and gzip/lz4/zstd, as a DBA
// would, into a directory that can be verified and started: base.tar into the
// data directory, pg_wal.tar into pg_wal, each <oid>.tar into its own
// directory with tablespace_map and the pg_tblspc link pointing there.

import { readdirSync, mkdirSync, readFileSync, writeFileSync, symlinkSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../harness/run.js';

const DECOMPRESS: Record<string, string> = { '.gz': 'gzip -dc', '.lz4': 'lz4 -dc', '.zst': 'zstd -dc' };

export async function untar(file: string, dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true, mode: 0o700 });
  const ext = Object.keys(DECOMPRESS).find((e) => file.endsWith(e));
  const cmd = ext ? `${DECOMPRESS[ext]} '${file}' | tar -xf - -C '${dest}'` : `tar -xf '${file}' -C '${dest}'`;
  const r = await runCommand('bash', ['-o', 'pipefail', '-c', cmd]);
  if (r.code !== 0) throw new Error(`extracting ${file} failed: ${r.stderr}`);
}

export async function extractTarBackup(backupDir: string, dataDir: string, tablespaceRoot: string): Promise<{ files: string[]; relocateTablespaces: () => void }> {
  const files = readdirSync(backupDir).filter((f) => /\.tar(\.(gz|lz4|zst))?$/.test(f));
  const base = files.find((f) => f.startsWith('base.tar'));
  if (!base) throw new Error(`no base.tar in ${backupDir}: ${files.join(', ')}`);
  await untar(join(backupDir, base), dataDir);
  const wal = files.find((f) => f.startsWith('pg_wal.tar'));
  if (wal) await untar(join(backupDir, wal), join(dataDir, 'pg_wal'));
  const mapPath = join(dataDir, 'tablespace_map');
  const lines: string[] = [];
  for (const f of files) {
    const m = /^(\d+)\.tar/.exec(f);
    if (!m) continue;
    const dir = join(tablespaceRoot, m[1]!);
    await untar(join(backupDir, f), dir);
    lines.push(`${m[1]} ${dir}`);
    const link = join(dataDir, 'pg_tblspc', m[1]!);
    if (existsSync(link)) rmSync(link, { recursive: true, force: true });
    mkdirSync(join(dataDir, 'pg_tblspc'), { recursive: true });
    symlinkSync(dir, link);
  }
  if (existsSync(join(backupDir, 'backup_manifest'))) writeFileSync(join(dataDir, 'backup_manifest'), readFileSync(join(backupDir, 'backup_manifest')));
  // tablespace_map is part of the verified backup: rewrite it only after verification.
  const relocateTablespaces = () => {
    if (lines.length > 0 || existsSync(mapPath)) writeFileSync(mapPath, lines.map((l) => l + '\n').join(''));
  };
  return { files, relocateTablespaces };
}
