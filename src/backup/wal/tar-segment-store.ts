// Streamed WAL segments as members of pg_wal.tar (optionally compressed):
// each member is declared with the full segment size up front, so the tar
// can be written strictly sequentially; a partial last segment is zero-filled.
// Members are 0600 whatever the source's modes, as pg_basebackup writes them.

import type { Writable } from 'node:stream';
import type { SegmentStore } from './segment-store.js';
import { TAR_END, encodeHeader } from '../../storage/tar/tar-header.js';
import { writeWithBackpressure } from '../../storage/stream-util.js';

const ZEROS = Buffer.alloc(1024 * 1024);

export class TarSegmentStore implements SegmentStore {
  constructor(
    private readonly out: Writable,
    private readonly segmentSize: number,
    private readonly done: Promise<void>,
  ) {}

  open(name: string): void | Promise<void> {
    return writeWithBackpressure(
      this.out,
      encodeHeader({ name, type: 'file', size: this.segmentSize, mode: 0o600, mtime: Math.floor(Date.now() / 1000), linkname: '' }),
    );
  }

  write(data: Buffer): void | Promise<void> {
    return writeWithBackpressure(this.out, data);
  }

  async close(written: number): Promise<void> {
    let left = this.segmentSize - written;
    while (left > 0) {
      const n = Math.min(left, ZEROS.length);
      await writeWithBackpressure(this.out, ZEROS.subarray(0, n));
      left -= n;
    }
  }

  async finish(): Promise<void> {
    await writeWithBackpressure(this.out, TAR_END);
    this.out.end();
    await this.done;
  }

  abort(): void {
    this.out.destroy();
  }
}
