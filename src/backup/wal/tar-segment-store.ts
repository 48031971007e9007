// Streamed WAL segments as members of pg_wal.tar (optionally compressed):
// each member is declared with the full segment size up front, so the tar
// can be written strictly sequentially; a partial last segment is zero-filled.
// A complete segment and the history file are followed by an empty
// archive_status/<name>.done member. Members are 0600 whatever the source's
// modes, as pg_basebackup writes them.

import type { Writable } from 'node:stream';
import type { SegmentStore } from './segment-store.js';
import { TAR_END, encodeHeader, paddingFor } from '../../storage/tar/tar-header.js';
import { writeWithBackpressure } from '../../storage/stream-util.js';

const ZEROS = Buffer.alloc(1024 * 1024);

export class TarSegmentStore implements SegmentStore {
  private name = '';

  constructor(
    private readonly out: Writable,
    private readonly segmentSize: number,
    private readonly done: Promise<void>,
  ) {}

  open(name: string): void | Promise<void> {
    this.name = name;
    return writeWithBackpressure(this.out, fileHeader(name, this.segmentSize));
  }

  async whole(name: string, data: Buffer): Promise<void> {
    await writeWithBackpressure(this.out, fileHeader(name, data.length));
    await writeWithBackpressure(this.out, data);
    const pad = paddingFor(data.length);
    if (pad > 0) await writeWithBackpressure(this.out, ZEROS.subarray(0, pad));
    await this.markArchived(name);
  }

  /** archive_status/<name>.done, as pg_basebackup writes it: the restored copy does not archive the file again. */
  private markArchived(name: string): Promise<void> | void {
    return writeWithBackpressure(this.out, fileHeader(`archive_status/${name}.done`, 0));
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
    if (written === this.segmentSize) await this.markArchived(this.name);
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

function fileHeader(name: string, size: number): Buffer {
  return encodeHeader({ name, type: 'file', size, mode: 0o600, mtime: Math.floor(Date.now() / 1000), linkname: '' });
}
