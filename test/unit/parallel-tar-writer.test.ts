import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { Readable } from 'node:stream';
import { TarWriter } from '../../src/backup/parallel/tar-writer.js';
import { syncEncoder } from '../../src/storage/compress/sync-encoder.js';
import { createDecompressor } from '../../src/storage/compress/index.js';
import type { CompressionAlgorithm } from '../../src/storage/compress/common.js';
import type { BaseBackupEvents } from '../../src/protocol/base-backup-stream.js';

/** The same members written plainly, and with readers' frames (as precompressTar asks): the second decompresses to the first. */
async function both(algorithm: CompressionAlgorithm): Promise<{ plain: Buffer; decoded: Buffer }> {
  const write = async (encoding: { compression: CompressionAlgorithm; level: number | undefined } | null): Promise<Buffer> => {
    const parts: Buffer[] = [];
    const ev = { tarData: (b: Buffer) => void parts.push(Buffer.from(b)) } as unknown as BaseBackupEvents;
    const tar = new TarWriter(ev, false, encoding);
    const enc = encoding ? syncEncoder(encoding.compression, encoding.level)! : null;
    const reader = (b: Buffer) => {
      if (!enc) return b;
      const out = Buffer.alloc(enc.bound(b.length));
      return out.subarray(0, enc.encode(b, out, 0));
    };
    await tar.entry({ name: 'base', type: 'directory', size: 0, mode: 0o700, mtime: 1, linkname: '' });
    const data = Buffer.alloc(3 * 1024 * 1024 + 100);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    await tar.entry({ name: 'base/1', type: 'file', size: data.length, mode: 0o600, mtime: 1, linkname: '' });
    for (let at = 0; at < data.length; at += 1 << 20) await tar.data(reader(data.subarray(at, at + (1 << 20))), Math.min(1 << 20, data.length - at));
    await tar.pad(data.length);
    await tar.entry({ name: 'base/2', type: 'file', size: 5, mode: 0o600, mtime: 1, linkname: '' });
    await tar.own(Buffer.alloc(5)); // a range gone midway: zeros written by the writer itself
    await tar.pad(5);
    await tar.file('backup_label', Buffer.from('START WAL LOCATION: 0/2\n'), 0o600, 1);
    await tar.end();
    return Buffer.concat(parts);
  };
  const plain = await write(null);
  const framed = await write({ compression: algorithm, level: undefined });
  const out: Buffer[] = [];
  for await (const c of Readable.from([framed]).pipe(createDecompressor(algorithm))) out.push(c as Buffer);
  return { plain, decoded: Buffer.concat(out) };
}

for (const algorithm of ['lz4', 'zstd', 'gzip'] as const) {
  test(`parallel TarWriter with readers' ${algorithm} frames decompresses to the plain tar stream`, async (t) => {
    if (!syncEncoder(algorithm)) return t.skip(`no synchronous ${algorithm} encoder here`);
    const { plain, decoded } = await both(algorithm);
    assert.equal(decoded.length, plain.length);
    assert.ok(decoded.equals(plain));
  });
}
