// Manifest file checksums: known vectors, the byte order PostgreSQL prints
// CRC-32C in, chunking that does not change the result, the JS CRC against a
// bitwise reference (and each native one: ISA-L, @node-rs/crc32), and the
// names --manifest-checksums accepts.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { crc32c, crc32cImplementation, crc32cJs } from '../../src/storage/filter/crc32c.js';
import { createManifestChecksum, crc32cHex, parseManifestChecksumAlgorithm } from '../../src/storage/filter/manifest-checksum.js';
import { crc32c as bitwiseCrc32c } from '../helpers/crc32c.js';

const ascii = (s: string) => new TextEncoder().encode(s);

test('CRC-32C of "123456789" is e3069283, printed in memory (little-endian) order', () => {
  assert.equal(crc32cJs(ascii('123456789')), 0xe3069283);
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
  const c = createManifestChecksum('CRC32C');
  c.update(ascii('123456789'));
  // pg_checksum_final memcpy's the uint32: on x86/ARM the bytes come out reversed.
  assert.equal(c.digestHex(), '839206e3');
  assert.equal(crc32cHex(0x01020304), '04030201');
});

test('CRC-32C of nothing is 0, hex 00000000', () => {
  assert.equal(createManifestChecksum('CRC32C').digestHex(), '00000000');
});

test('the JS CRC-32C agrees with a bitwise reference at every alignment and length', () => {
  const data = randomBytes(4096 + 13);
  for (const [off, len] of [[0, 0], [1, 1], [3, 7], [0, 8], [1, 9], [2, 31], [5, 4096], [0, 4109]] as const) {
    const view = data.subarray(off, off + len);
    assert.equal(crc32cJs(view), bitwiseCrc32c(view), `offset ${off} length ${len}`);
  }
});

test('CRC-32C carried across chunks equals the CRC of the whole (JS and selected implementation)', () => {
  const data = randomBytes(100_003);
  const whole = bitwiseCrc32c(data);
  for (const fn of [crc32cJs, crc32c]) {
    let crc = 0;
    for (let i = 0; i < data.length; i += 7919) crc = fn(data.subarray(i, i + 7919), crc);
    assert.equal(crc, whole);
  }
});

test('each CRC-32C implementation (ISA-L, @node-rs/crc32, JS) agrees with the bitwise reference at every alignment', () => {
  // Each rule in a child process: the implementation is chosen when the module loads.
  const module = fileURLToPath(new URL('../../src/storage/filter/crc32c.js', import.meta.url));
  const reference = fileURLToPath(new URL('../helpers/crc32c.js', import.meta.url));
  const script = `
    import { crc32c, crc32cImplementation } from ${JSON.stringify(module)};
    import { crc32c as bitwise } from ${JSON.stringify(reference)};
    import { randomBytes } from 'node:crypto';
    const data = randomBytes(300_007);
    for (const [off, len] of [[0, 0], [1, 1], [3, 7], [1, 9], [5, 4096], [7, 8192], [0, 300_007], [13, 299_000]]) {
      const view = data.subarray(off, off + len);
      if (crc32c(view) !== bitwise(view)) throw new Error('offset ' + off + ' length ' + len);
    }
    let crc = 0;
    for (let i = 0; i < data.length; i += 7919) crc = crc32c(data.subarray(i, i + 7919), crc);
    if (crc !== bitwise(data)) throw new Error('carried');
    console.log(crc32cImplementation);`;
  const seen: string[] = [];
  for (const rule of ['', 'node-rs', 'js']) {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, PGPITR_CRC32C: rule } });
    assert.equal(run.status, 0, run.stderr);
    seen.push(run.stdout.trim());
  }
  assert.equal(seen[2], 'js');
  assert.ok(['isal', 'node-rs', 'js'].includes(seen[0]!) && ['node-rs', 'js'].includes(seen[1]!), seen.join(' '));
  // Where the test environment installs libisal2 (scripts/setup-test-env.sh), the fast path is the one taken.
  if (existsSync('/usr/lib/x86_64-linux-gnu/libisal.so.2')) assert.equal(seen[0], 'isal');
  assert.equal(crc32cImplementation, process.env.PGPITR_CRC32C ? crc32cImplementation : seen[0]);
});

test('SHA checksums are the plain hex digests; NONE gives no checksum', () => {
  for (const alg of ['SHA224', 'SHA256', 'SHA384', 'SHA512'] as const) {
    const c = createManifestChecksum(alg);
    c.update(ascii('1234'));
    c.update(ascii('56789'));
    assert.equal(c.digestHex(), createHash(alg.toLowerCase()).update('123456789').digest('hex'));
  }
  const sha256 = createManifestChecksum('SHA256');
  sha256.update(ascii('abc'));
  assert.equal(sha256.digestHex(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const none = createManifestChecksum('NONE');
  none.update(ascii('x'));
  assert.equal(none.digestHex(), '');
});

test('algorithm names are accepted in any case; anything else is a usage error', () => {
  assert.equal(parseManifestChecksumAlgorithm('crc32c'), 'CRC32C');
  assert.equal(parseManifestChecksumAlgorithm('Sha256'), 'SHA256');
  assert.equal(parseManifestChecksumAlgorithm('none'), 'NONE');
  assert.equal(parseManifestChecksumAlgorithm('SHA512'), 'SHA512');
  for (const bad of ['', 'md5', 'sha-256', 'crc32', ' sha256']) {
    assert.throws(() => parseManifestChecksumAlgorithm(bad), { code: 'ERR_USAGE' });
  }
});
