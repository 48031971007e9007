// basebackup -j --resume: a file the interrupted run copied without verifying
// its pages (--no-verify-checksums) is not kept by a run that verifies them: it
// is copied again and a damaged page is reported. Real reader threads, real files.

import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync, utimesSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE, pageChecksum } from '../../src/postgres/page-checksum.js';
import { ReadPool } from '../../src/backup/parallel/read-pool.js';
import { copyToPath } from '../../src/backup/parallel/file-copy.js';
import { ChecksumReport } from '../../src/backup/parallel/checksum-report.js';
import type { CopyContext } from '../../src/backup/parallel/copy-context.js';
import type { CopyJournal, JournalEntry } from '../../src/backup/parallel/copy-journal.js';
import { crc32c } from '../../src/storage/filter/crc32c.js';
import { crc32cHex } from '../../src/storage/filter/manifest-checksum.js';

function page(block: number, seed: number): Buffer {
  const p = Buffer.alloc(PAGE_SIZE);
  p.writeUInt32LE(0, 0);
  p.writeUInt32LE(0x4000000, 4); // LSN before the backup's start
  p.writeUInt16LE(40, 12);
  p.writeUInt16LE(PAGE_SIZE - 4000, 14);
  p.writeUInt16LE(PAGE_SIZE, 16);
  for (let i = PAGE_SIZE - 4000; i < PAGE_SIZE; i++) p[i] = (i * 31 + seed) & 0xff;
  p.writeUInt16LE(pageChecksum(p, block), 8);
  return p;
}

for (const verified of [false, true]) {
  test(`--resume after a run ${verified ? 'that verified' : 'with --no-verify-checksums'}: the earlier copy is ${verified ? 'kept' : 'copied again, and its damaged page reported'}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgpitr-resume-unverified-'));
    const pool = new ReadPool(1, () => {});
    try {
      const pages = [0, 1, 2].map((b) => page(b, b));
      pages[1]![6000]! ^= 0x04; // damaged on disk, and so in the earlier copy
      const bytes = Buffer.concat(pages);
      const source = join(dir, '16384');
      const dest = join(dir, 'copy-16384');
      writeFileSync(source, bytes);
      writeFileSync(dest, bytes);
      const old = Date.now() / 1000 - 3600;
      utimesSync(source, old, old);
      const mtimeUs = Math.round(statSync(source).mtimeMs * 1000);
      const prev: JournalEntry = { path: 'base/5/16384', size: bytes.length, mtime_us: mtimeUs, started_us: Date.now() * 1000 - 60_000_000, algorithm: 'CRC32C', checksum: crc32cHex(crc32c(bytes)), pages_verified: verified };
      const warnings: string[] = [];
      const kept = { files: 0, bytes: 0 };
      const journal = { record() {} } as unknown as CopyJournal;
      const ctx: CopyContext = { readers: pool, startLsn: 0x5000000n, algorithm: 'CRC32C', checksums: new ChecksumReport((m) => void warnings.push(m)), manifest: null, resume: { journal, previous: new Map([['base/5/16384', prev]]), kept } };
      const f = { kind: 'file' as const, name: 'base/5/16384', manifestPath: 'base/5/16384', source, serverName: './base/5/16384', size: bytes.length, mode: 0o600, mtime: Math.floor(old), mtimeUs, blockBase: 0, local: true };
      await copyToPath(ctx, f, dest);
      if (verified) {
        assert.equal(kept.files, 1);
        assert.deepEqual(warnings, []);
      } else {
        assert.equal(kept.files, 0);
        assert.equal(warnings.length, 1, warnings.join('\n'));
        assert.match(warnings[0]!, /block 1/);
      }
    } finally {
      await pool.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
