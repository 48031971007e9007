// The repository reaches its bytes only through the Storage interface, and the
// CLI only parses options, calls one function and prints: neither src/repo nor
// src/cli may import node:fs (issue 9). A new import of it there fails here,
// naming the file; the fix is a Storage call (repo/) or a function below the
// CLI (src/commands/, src/wal/, src/archiving/).

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const FS_IMPORT = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"](?:node:)?fs(?:\/promises)?['"]/;

for (const layer of ['src/repo', 'src/cli']) {
  test(`${layer} imports no node:fs`, () => {
    const files = sources(join(root, layer));
    assert.ok(files.length > 0, `no sources found under ${layer}`);
    const offenders = files.filter((f) => FS_IMPORT.test(readFileSync(f, 'utf8'))).map((f) => f.slice(root.length + 1));
    assert.deepEqual(offenders, [], `these files import node:fs: ${offenders.join(', ')}`);
  });
}
