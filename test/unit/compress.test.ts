// Tests for src/storage/compress: round trips at many chunk splits, interop with
// the gzip / lz4 / zstd command-line tools in both directions (skipped when a
// tool is missing), multi-frame input, empty and corrupt input, backpressure.

import { test } from 'node:test';
import { strict as assert } from 'node:assert'; // = node:assert/strict
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Transform } from 'node:stream';
import {
  compressionExtension,
  createCompressor,
  createDecompressor,
  levelRange,
  CompressionError,
} from '../../src/storage/compress/index.js';
import type { CompressionAlgorithm, CompressionSpec } from '../../src/storage/compress/index.js';

const ALGORITHMS: CompressionAlgorithm[] = ['gzip', 'lz4', 'zstd'];
const CLI: Record<CompressionAlgorithm, string> = { gzip: 'gzip', lz4: 'lz4', zstd: 'zstd' };

/** Deterministic data that compresses like a PostgreSQL data directory: pages of rows, zeros, noise. */
function pgLikeData(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  let at = 0;
  while (at < size) {
    const kind = rnd() % 4;
    const len = Math.min(size - at, 512 + (rnd() % 8192));
    if (kind === 0) {
      at += len; // zero-filled free space
    } else if (kind === 1) {
      for (let i = 0; i < len; i++) out[at + i] = rnd() & 0xff; // incompressible
      at += len;
    } else {
      const row = Buffer.from(`${rnd() % 100000}|user${rnd() % 5000}|login|2024-01-0${rnd() % 9} 12:00:00|`);
      for (let i = 0; i < len; i++) out[at + i] = row[i % row.length]!;
      at += len;
    }
  }
  return out;
}

function chunksOf(buf: Buffer, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
    })(),
  );
}

async function run(transform: Transform, input: Buffer, chunk = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      parts.push(c);
      cb();
    },
  });
  await pipeline(chunksOf(input, chunk), transform, sink);
  return Buffer.concat(parts);
}

const compress = (spec: CompressionSpec, input: Buffer, chunk?: number): Promise<Buffer> =>
  run(createCompressor(spec), input, chunk);
const decompress = (a: CompressionAlgorithm, input: Buffer, chunk?: number): Promise<Buffer> =>
  run(createDecompressor(a), input, chunk);

function haveCli(name: string): boolean {
  const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

function cli(name: string, args: string[], input?: Buffer): Buffer {
  const r = spawnSync(name, args, { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${name} ${args.join(' ')} failed: ${r.stderr?.toString()}`);
  return r.stdout;
}

async function rejectsCorrupt(p: Promise<unknown>, algorithm: CompressionAlgorithm): Promise<void> {
  await assert.rejects(p, (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ERR_COMPRESSION_CORRUPT', `unexpected error ${e.code}: ${e.message}`);
    assert.match(e.message, new RegExp(algorithm));
    return true;
  });
}

const small = pgLikeData(40_000, 7);
const medium = pgLikeData(3 * 1024 * 1024 + 123, 3);

test('levelRange and compressionExtension follow PostgreSQL', () => {
  assert.deepEqual(levelRange('gzip'), { min: 1, max: 9, default: 6 });
  assert.deepEqual(levelRange('lz4'), { min: 1, max: 12, default: 1 });
  assert.deepEqual(levelRange('zstd'), { min: -131072, max: 22, default: 3 });
  assert.equal(compressionExtension('gzip'), '.gz');
  assert.equal(compressionExtension('lz4'), '.lz4');
  assert.equal(compressionExtension('zstd'), '.zst');
});

test('invalid specifications are rejected with a code', () => {
  for (const spec of [
    { algorithm: 'gzip', level: 0 },
    { algorithm: 'gzip', level: 10 },
    { algorithm: 'lz4', level: 13 },
    { algorithm: 'zstd', level: 23 },
    { algorithm: 'zstd', level: 2.5 },
    { algorithm: 'gzip', long: true },
    { algorithm: 'zstd', workers: -1 },
    { algorithm: 'brotli' },
  ] as CompressionSpec[]) {
    assert.throws(() => createCompressor(spec), (e: Error & { code?: string }) => typeof e.code === 'string');
  }
  createCompressor({ algorithm: 'lz4', level: 0 }).destroy(); // PostgreSQL's default lz4 level
});

for (const algorithm of ALGORITHMS) {
  test(`${algorithm}: round trip at many chunk splits`, async () => {
    for (const chunk of [1, 7, 4093, 65536, 1_048_579, 8 << 20]) {
      const input = chunk < 4093 ? small.subarray(0, 12_000) : medium;
      const packed = await compress({ algorithm }, input, chunk);
      assert.ok(packed.length < input.length, `compressed ${packed.length} >= ${input.length}`);
      for (const dchunk of [1, 3, 997, 65536, 5 << 20]) {
        if (dchunk < 997 && packed.length > 20_000) continue; // tiny pieces: on small streams only
        const back = await decompress(algorithm, packed, dchunk);
        assert.ok(back.equals(input), `chunk ${chunk}/${dchunk}: round trip differs`);
      }
    }
  });

  test(`${algorithm}: levels and workers round trip`, async () => {
    const r = levelRange(algorithm);
    const levels = [r.min === -131072 ? -5 : r.min, r.default, algorithm === 'zstd' ? 19 : r.max];
    for (const level of levels) {
      const packed = await compress({ algorithm, level }, medium);
      assert.ok((await decompress(algorithm, packed)).equals(medium), `level ${level}`);
    }
    const big = pgLikeData(13 * 1024 * 1024 + 5, 11);
    for (const workers of [2, 3]) {
      const packed = await compress({ algorithm, workers }, big, 100_000);
      assert.ok((await decompress(algorithm, packed, 77_777)).equals(big), `workers ${workers}`);
    }
  });

  test(`${algorithm}: empty input`, async () => {
    const packed = await compress({ algorithm }, Buffer.alloc(0));
    assert.ok(packed.length > 0, 'an empty stream still has a header');
    assert.equal((await decompress(algorithm, packed)).length, 0);
    const packed2 = await compress({ algorithm, workers: 2 }, Buffer.alloc(0));
    assert.equal((await decompress(algorithm, packed2)).length, 0);
    if (haveCli(CLI[algorithm])) {
      assert.equal(cli(CLI[algorithm], ['-dc'], packed).length, 0);
      assert.equal(cli(CLI[algorithm], ['-dc'], packed2).length, 0);
    }
    await rejectsCorrupt(decompress(algorithm, Buffer.alloc(0)), algorithm);
  });

  test(`${algorithm}: concatenated streams decode as one`, async () => {
    const a = await compress({ algorithm }, medium);
    const b = await compress({ algorithm, level: levelRange(algorithm).max === 22 ? 1 : 2 }, small);
    const e = await compress({ algorithm }, Buffer.alloc(0));
    const back = await decompress(algorithm, Buffer.concat([a, e, b, a]), 10_000);
    assert.ok(back.equals(Buffer.concat([medium, small, medium])));
  });

  test(`${algorithm}: corrupt and truncated input are rejected`, async () => {
    const packed = await compress({ algorithm }, medium);
    await rejectsCorrupt(decompress(algorithm, packed.subarray(0, packed.length - 1)), algorithm);
    await rejectsCorrupt(decompress(algorithm, packed.subarray(0, Math.floor(packed.length / 2))), algorithm);
    await rejectsCorrupt(decompress(algorithm, packed.subarray(0, 3)), algorithm);
    if (algorithm !== 'zstd') {
      // zstd frames from @bokuweb/zstd-wasm carry no checksum and fzstd checks none:
      // damage inside zstd data is caught by the backup manifest's checksums instead.
      const flipped = Buffer.from(packed);
      for (let i = 0; i < 16; i++) flipped[Math.floor(packed.length / 3) + i * 101]! ^= 0x5a;
      await rejectsCorrupt(decompress(algorithm, flipped), algorithm);
    }
    await rejectsCorrupt(decompress(algorithm, pgLikeData(100_000, 5)), algorithm);
    // Trailing bytes that are not another frame (gzip, like zlib, ignores trailing garbage).
    if (algorithm !== 'gzip') {
      await rejectsCorrupt(decompress(algorithm, Buffer.concat([packed, Buffer.from('garbage!')])), algorithm);
    }
  });

  test(`${algorithm}: output is produced only as fast as it is read`, async () => {
    // 256 MiB of zeros compresses to a few kB; written at once, the decoder must not inflate it all.
    const zeros = Buffer.alloc(256 << 20);
    const packed = await compress({ algorithm, level: levelRange(algorithm).default }, zeros, 8 << 20);
    assert.ok(packed.length < 2 << 20);
    const d = createDecompressor(algorithm);
    d.end(packed);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(d.readableLength <= 8 << 20, `buffered ${d.readableLength} bytes without a reader`);
    let total = 0;
    let maxBuffered = 0;
    for await (const c of d) {
      total += (c as Buffer).length;
      maxBuffered = Math.max(maxBuffered, d.readableLength);
    }
    assert.equal(total, zeros.length);
    assert.ok(maxBuffered <= 8 << 20, `buffered up to ${maxBuffered} bytes`);
  });
}

const interop: Record<CompressionAlgorithm, string[][]> = {
  gzip: [['-1'], ['-9'], ['-6', '--no-name']],
  lz4: [
    ['-1'],
    ['-9'], // HC
    ['-BD'], // linked blocks (PostgreSQL's lz4 frames use linked blocks)
    ['-BD', '-B5'], // linked 256 kB blocks, as PostgreSQL writes
    ['-B4', '-BX'], // 64 kB blocks with block checksums
    ['--no-frame-crc'],
    ['--content-size'],
    ['-B7', '-BD', '-BX', '--content-size'],
  ],
  zstd: [['-1'], ['-19'], ['--no-check'], ['-T2', '-3'], ['--content-size'], ['--ultra', '-20']],
};

for (const algorithm of ALGORITHMS) {
  const tool = CLI[algorithm];
  test(`${algorithm}: interop with the ${tool} command`, async (t) => {
    if (!haveCli(tool)) {
      t.skip(`${tool} is not installed (apt-get install -y ${tool}); interop not tested`);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'pgpitr-compress-'));
    try {
      const plainPath = join(dir, 'plain');
      writeFileSync(plainPath, medium);
      // ours -> CLI, single-stream and block-parallel, several levels
      const r = levelRange(algorithm);
      for (const spec of [
        { algorithm },
        { algorithm, level: r.max === 22 ? 19 : r.max },
        { algorithm, workers: 2 },
      ] as CompressionSpec[]) {
        const packed = await compress(spec, medium, 33_333);
        const packedPath = join(dir, `ours${compressionExtension(algorithm)}`);
        writeFileSync(packedPath, packed);
        const args = algorithm === 'zstd' && spec.long ? ['-dc', '--long=27', packedPath] : ['-dc', packedPath];
        assert.ok(cli(tool, args).equals(medium), `${tool} ${args.join(' ')} of ${JSON.stringify(spec)}`);
        if (algorithm !== 'gzip') cli(tool, ['-t', packedPath]); // verifies checksums
      }
      // CLI -> ours, with frame options
      for (const opts of interop[algorithm]) {
        const packed = cli(tool, [...opts, '-c', plainPath]);
        for (const chunk of [1000, 65536]) {
          const back = await decompress(algorithm, packed, chunk);
          assert.ok(back.equals(medium), `${tool} ${opts.join(' ')} chunk ${chunk}`);
        }
      }
      // CLI multi-frame / multi-member files (e.g. `cat a.gz b.gz`)
      const a = cli(tool, ['-c', plainPath]);
      const b = cli(tool, ['-c'], small);
      assert.ok((await decompress(algorithm, Buffer.concat([a, b]), 4096)).equals(Buffer.concat([medium, small])));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('skippable lz4 and zstd frames are ignored', async () => {
  const skippable = Buffer.alloc(8 + 10, 0x77);
  skippable.writeUInt32LE(0x184d2a53, 0);
  skippable.writeUInt32LE(10, 4);
  for (const algorithm of ['lz4', 'zstd'] as const) {
    const packed = await compress({ algorithm }, small);
    const back = await decompress(algorithm, Buffer.concat([skippable, packed, skippable]), 5);
    assert.ok(back.equals(small), algorithm);
  }
});

test('client-side zstd refuses long mode; a 128 MiB-window frame (server-side `long`) decodes', async (t) => {
  assert.throws(() => createCompressor({ algorithm: 'zstd', long: true }), /long-distance mode/);
  if (!haveCli('zstd')) {
    t.skip('zstd is not installed');
    return;
  }
  const part = pgLikeData(2 << 20, 9);
  const input = Buffer.concat([part, pgLikeData(1 << 20, 10), part]);
  const packed = cli('zstd', ['--long=27', '-3', '-c'], input);
  assert.ok((await decompress('zstd', packed, 12_345)).equals(input));
});

test('a server-side style stream: one lz4 frame with linked blocks, read in odd pieces', async (t) => {
  if (!haveCli('lz4')) {
    t.skip('lz4 is not installed');
    return;
  }
  const input = pgLikeData(5 << 20, 21);
  const packed = cli('lz4', ['-BD', '-B5', '-c'], input);
  assert.ok((await decompress('lz4', packed, 3331)).equals(input));
  assert.ok((await decompress('lz4', packed, 1 << 20)).equals(input));
});

test('lz4 compresses with the system liblz4 where present, fast and high-compression levels, and with lz4-napi when forced', async (t) => {
  if (!haveCli('lz4')) {
    t.skip('lz4 is not installed');
    return;
  }
  const { lz4Implementation } = await import('../../src/storage/compress/lz4.js');
  // The lz4 command links liblz4, so where it is installed the native path must be taken.
  assert.match(lz4Implementation(), /^liblz4 \d+\.\d+\.\d+$/);
  const input = pgLikeData(3 << 20, 31);
  const fast = await compress({ algorithm: 'lz4', level: 1 }, input, 77_777);
  const high = await compress({ algorithm: 'lz4', level: 9 }, input, 77_777);
  assert.ok(high.length < fast.length, `level 9 (${high.length} bytes) should be smaller than level 1 (${fast.length})`);
  for (const packed of [fast, high]) {
    assert.ok(cli('lz4', ['-d', '-c'], packed).equals(input));
    assert.ok((await decompress('lz4', packed, 4097)).equals(input));
  }
  // The fallback, in a process of its own (the choice is made once per process).
  const dir = mkdtempSync(join(tmpdir(), 'pgpitr-lz4-'));
  try {
    writeFileSync(join(dir, 'in'), input);
    const moduleUrl = new URL('../../src/storage/compress/index.js', import.meta.url).href;
    const script = `
      import { createCompressor } from ${JSON.stringify(moduleUrl)};
      import { lz4Implementation } from ${JSON.stringify(moduleUrl.replace('index.js', 'lz4.js'))};
      import { createReadStream, createWriteStream } from 'node:fs';
      import { pipeline } from 'node:stream/promises';
      await pipeline(createReadStream(process.argv[1] + '/in'), createCompressor({ algorithm: 'lz4' }), createWriteStream(process.argv[1] + '/out.lz4'));
      console.log(lz4Implementation());`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, dir], {
      env: { ...process.env, PGPITR_LZ4: 'lz4-napi' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /lz4-napi/);
    assert.ok(cli('lz4', ['-d', '-c', join(dir, 'out.lz4')]).equals(input));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zstd compresses with the system libzstd at the level asked for, streams and whole files, and with @mongodb-js/zstd when forced', async (t) => {
  const { nativeZstd } = await import('../../src/storage/compress/zstd-native.js');
  const { compressBuffer, decompressBuffer } = await import('../../src/storage/compress/buffer.js');
  const native = nativeZstd();
  if (!native) {
    t.skip('libzstd is not installed');
    return;
  }
  assert.match(native.version, /^\d+\.\d+\.\d+$/);
  const input = pgLikeData(3 << 20, 37);
  // Levels change the output (the @mongodb-js/zstd 1.x wrapper used to drop them: every level gave level 3's bytes).
  const streamed1 = await compress({ algorithm: 'zstd', level: 1 }, input, 77_777);
  const streamed19 = await compress({ algorithm: 'zstd', level: 19 }, input, 77_777);
  assert.ok(streamed19.length < streamed1.length, `stream: level 19 (${streamed19.length} bytes) should be smaller than level 1 (${streamed1.length})`);
  const whole1 = await compressBuffer('zstd', input, 1);
  const whole19 = await compressBuffer('zstd', input, 19);
  assert.ok(whole19.length < whole1.length, `whole file: level 19 (${whole19.length} bytes) should be smaller than level 1 (${whole1.length})`);
  for (const packed of [streamed1, streamed19, whole1, whole19]) {
    assert.ok((await decompress('zstd', packed, 4097)).equals(input));
    assert.ok((await decompressBuffer('zstd', packed)).equals(input));
    if (haveCli('zstd')) assert.ok(cli('zstd', ['-dc'], packed).equals(input));
  }
  // Whole-file decoding of frames without a recorded size (the zstd tool's streaming mode) falls back and still works.
  if (haveCli('zstd')) {
    const unsized = cli('zstd', ['-c', '--no-content-size'], input);
    assert.equal(await native.decompress(unsized), null);
    assert.ok((await decompressBuffer('zstd', unsized)).equals(input));
  }
  await assert.rejects(decompressBuffer('zstd', Buffer.from('not zstd at all')), (e: Error) => e instanceof CompressionError);
  // The fallback, in a process of its own (the choice is made once per process).
  const moduleUrl = new URL('../../src/storage/compress/buffer.js', import.meta.url).href;
  const script = `
    import { compressBuffer, decompressBuffer } from ${JSON.stringify(moduleUrl)};
    import { nativeZstd } from ${JSON.stringify(moduleUrl.replace('buffer.js', 'zstd-native.js'))};
    const input = Buffer.alloc(1 << 20, 'pgpitr ');
    const packed = await compressBuffer('zstd', input, 5);
    if (!(await decompressBuffer('zstd', packed)).equals(input)) throw new Error('round trip differs');
    console.log(nativeZstd() === null ? 'fallback' : 'native');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, PGPITR_ZSTD: 'mongodb-js' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /fallback/);
});

test('hundreds of whole-buffer compressions at once all succeed (koffi refuses past 256 queued calls)', async (t) => {
  const { nativeZstd } = await import('../../src/storage/compress/zstd-native.js');
  const { nativeLz4 } = await import('../../src/storage/compress/lz4-native.js');
  const { compressBuffer, decompressBuffer } = await import('../../src/storage/compress/buffer.js');
  if (!nativeZstd() && !nativeLz4()) {
    t.skip('neither libzstd nor liblz4 is installed');
    return;
  }
  // What a backup's small files do when the reader threads deliver them faster than the thread pool compresses.
  const inputs = Array.from({ length: 600 }, (_, i) => pgLikeData(16 * 1024, i + 1));
  for (const algorithm of ['zstd', 'lz4'] as const) {
    const packed = await Promise.all(inputs.map((d) => compressBuffer(algorithm, d, undefined)));
    for (const [i, p] of packed.entries()) assert.ok((await decompressBuffer(algorithm, p)).equals(inputs[i]!));
  }
});
