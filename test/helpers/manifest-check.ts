// Checks a plain backup against its backup_manifest (versions 1 and 2): every
// listed file exists with the listed size and checksum, no unlisted files, and
// the manifest's own SHA-256. Used where the machine's pg_verifybackup cannot
// read the manifest (PostgreSQL 17+ write version 2).

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, lstatSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';

/** PostgreSQL prints the CRC's bytes in memory order (little-endian). */
function crc32cHex(data: Buffer): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(crc32c(data));
  return b.toString('hex');
}

interface ManifestFile {
  Path?: string;
  'Encoded-Path'?: string;
  Size: number;
  'Checksum-Algorithm'?: string;
  Checksum?: string;
}

const IGNORED = new Set(['backup_manifest', 'pg_wal', 'postgresql.auto.conf', 'recovery.signal', 'standby.signal']);

export async function checkManifest(dir: string, extraIgnored: string[] = []): Promise<void> {
  const text = readFileSync(join(dir, 'backup_manifest'));
  const body = text.toString('utf8');
  const marker = body.lastIndexOf('"Manifest-Checksum"');
  const manifest = JSON.parse(body) as { Files: ManifestFile[]; 'Manifest-Checksum': string };
  const digest = createHash('sha256').update(text.subarray(0, Buffer.byteLength(body.slice(0, marker)))).digest('hex');
  if (digest !== manifest['Manifest-Checksum']) throw new Error(`backup_manifest checksum mismatch in ${dir}`);
  const listed = new Set<string>();
  for (const f of manifest.Files) {
    const path = f.Path ?? Buffer.from(f['Encoded-Path'] ?? '', 'hex').toString('utf8');
    listed.add(path);
    // As pg_verifybackup -i: an ignored path is not checked against the manifest either.
    if (extraIgnored.includes(path)) continue;
    const full = join(dir, path);
    const st = statSync(full, { throwIfNoEntry: false });
    if (!st) throw new Error(`"${path}" is in the manifest but not on disk`);
    if (st.size !== f.Size) throw new Error(`"${path}" has size ${st.size} on disk but ${f.Size} in the manifest`);
    const algo = f['Checksum-Algorithm'];
    if (!algo || algo === 'NONE') continue;
    const data = readFileSync(full);
    const actual = algo === 'CRC32C' ? crc32cHex(data) : createHash(algo.toLowerCase()).update(data).digest('hex');
    if (actual !== f.Checksum) throw new Error(`checksum mismatch for "${path}"`);
  }
  const ignored = new Set([...IGNORED, ...extraIgnored]);
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (ignored.has(r)) continue;
      const st = lstatSync(join(dir, r));
      const isDir = st.isDirectory() || (st.isSymbolicLink() && statSync(join(dir, r)).isDirectory());
      if (isDir) walk(r);
      else if (!listed.has(r)) throw new Error(`"${r}" is on disk but not in the manifest`);
    }
  };
  walk('');
}
