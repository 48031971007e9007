// archive-push and archive-get start a process per WAL file, so what a command
// loads before it runs is start-up time. The AWS SDK costs a few hundred ms to
// load: only an s3 repository may pay for it, through a dynamic import of the
// S3 driver. This test walks the static import graph (import/export ... from,
// and require() of a package) of the compiled CLI entry point and of every
// command, and fails if @aws-sdk or the S3 driver is reachable without a
// dynamic import, naming the chain of files that reaches it.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(dist, 'src');

// import x from '...'; import '...'; export { a } from '...'; export * from '...' (not import()).
const STATIC_IMPORT = /(?:^|[;}\n])\s*(?:import|export)\s+(?:[^'";()]*?\sfrom\s*)?['"]([^'"]+)['"]/g;
// require('pkg'), also through a createRequire()'d require.
const REQUIRE = /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

function forbidden(spec: string): boolean {
  return spec.startsWith('@aws-sdk/') || spec.startsWith('@smithy/') || /storage\/s3\/s3-storage(\.js)?$/.test(spec);
}

/** The first chain of files from entry to a forbidden module, or null. */
function reach(entry: string): string[] | null {
  const seen = new Set<string>();
  const walk = (file: string, chain: string[]): string[] | null => {
    if (seen.has(file)) return null;
    seen.add(file);
    const here = [...chain, file.slice(dist.length + 1)];
    if (chain.length > 0 && forbidden(file.replace(/\\/g, '/'))) return here;
    const text = readFileSync(file, 'utf8');
    const specs = [...text.matchAll(STATIC_IMPORT), ...text.matchAll(REQUIRE)].map((m) => m[1]!);
    for (const spec of specs) {
      if (forbidden(spec)) return [...here, spec];
      if (!spec.startsWith('.')) continue;
      const next = resolve(dirname(file), spec);
      if (existsSync(next)) {
        const found = walk(next, here);
        if (found) return found;
      }
    }
    return null;
  };
  return walk(entry, []);
}

test('the walker sees the SDK in the S3 driver itself (so that it can see it anywhere)', () => {
  const chain = reach(join(src, 'storage', 's3', 's3-storage.js'));
  assert.ok(chain !== null && chain.some((c) => c.startsWith('@aws-sdk/')), `found: ${chain?.join(' -> ')}`);
});

test('the CLI entry point and every command reach neither @aws-sdk nor the S3 driver without a dynamic import', () => {
  const commands = readdirSync(join(src, 'cli', 'commands')).filter((f) => f.endsWith('.js')).map((f) => join(src, 'cli', 'commands', f));
  assert.ok(commands.length >= 10, `commands found: ${commands.length}`);
  const offenders: string[] = [];
  for (const entry of [join(src, 'cli', 'main.js'), ...commands]) {
    const chain = reach(entry);
    if (chain !== null) offenders.push(chain.join(' -> '));
  }
  assert.deepEqual(offenders, [], `statically reached:\n${offenders.join('\n')}`);
});
