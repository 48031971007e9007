// XXH3-128, a backup set's content digest: libxxhash and hash-wasm's build give
// the same digests (each in a child process: the implementation is chosen when
// the module loads), streamed or whole, with several hashes interleaved.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createDigest, digestOf, digestMismatch } from '../../src/repo/backup-set/content-digest.js';

test('each XXH3-128 implementation (libxxhash, hash-wasm) gives the same digests, streamed and interleaved', () => {
  const module = fileURLToPath(new URL('../../src/storage/filter/xxh128.js', import.meta.url));
  const script = `
    import { createXxh128, xxh128Hex, xxh128Implementation, XXH128_VECTORS } from ${JSON.stringify(module)};
    import { createHash } from 'node:crypto';
    for (const [input, hex] of XXH128_VECTORS) if (xxh128Hex(input) !== hex) throw new Error('vector ' + input.length);
    // Deterministic bytes, so that both runs hash the same.
    const data = Buffer.alloc(3_000_007);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const whole = xxh128Hex(data);
    const a = createXxh128(), b = createXxh128();
    for (let i = 0; i < data.length; i += 65_537) {
      a.update(data.subarray(i, i + 65_537));
      b.update(data.subarray(i, i + 1));
    }
    if (a.digestHex() !== whole) throw new Error('streamed');
    const ones = Buffer.alloc(Math.ceil(data.length / 65_537));
    for (let i = 0, k = 0; i < data.length; i += 65_537) ones[k++] = data[i];
    if (b.digestHex() !== xxh128Hex(ones)) throw new Error('interleaved');
    let threw = false;
    try { a.update(data); } catch { threw = true; }
    if (!threw) throw new Error('updated after its digest');
    console.log(xxh128Implementation + ' ' + whole);`;
  const seen: string[] = [];
  for (const rule of ['', 'wasm']) {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, PGPITR_XXH128: rule } });
    assert.equal(run.status, 0, run.stderr);
    seen.push(run.stdout.trim());
  }
  const [native, wasm] = seen.map((s) => s.split(' '));
  assert.equal(wasm![0], 'wasm');
  assert.equal(native![1], wasm![1], 'both implementations give the same digest');
  // Where the test environment installs libxxhash0 (scripts/setup-test-env.sh), the fast path is the one taken.
  if (existsSync('/usr/lib/x86_64-linux-gnu/libxxhash.so.0')) assert.equal(native![0], 'libxxhash');
});

test('a manifest entry gives its digest: XXH3-128 (format 2) or SHA-256 (format 1), and messages name it', () => {
  assert.deepEqual(digestOf({ xxh128: 'ab'.repeat(16) }), { algorithm: 'xxh128', hex: 'ab'.repeat(16) });
  assert.deepEqual(digestOf({ sha256: 'cd'.repeat(32) }), { algorithm: 'sha256', hex: 'cd'.repeat(32) });
  assert.equal(digestOf({ xxh128: 'ab'.repeat(32) }), null, 'a SHA-256-long value is no XXH3-128');
  assert.equal(digestOf({}), null);
  const h = createDigest('sha256');
  h.update(Buffer.from('abc'));
  assert.equal(h.digestHex(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(digestMismatch({ algorithm: 'xxh128', hex: '1'.repeat(32) }, '2'.repeat(32)), `XXH3-128 ${'2'.repeat(32)} instead of ${'1'.repeat(32)}`);
});
