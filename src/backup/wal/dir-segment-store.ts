// Streamed WAL segments as files in a directory (pg_wal of a plain backup).

import { openSync, closeSync, ftruncateSync, fsyncSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SegmentStore } from './segment-store.js';
import { writeAll } from '../../storage/file-writable.js';
import { fsyncPathSync } from '../../storage/durable.js';
import { storageError } from '../../common/errors.js';
import type { CreateModes } from '../../postgres/data-dir-mode.js';

export class DirSegmentStore implements SegmentStore {
  private fd: number | null = null;
  private path = '';

  constructor(
    private readonly dir: string,
    private readonly segmentSize: number,
    private readonly sync: boolean,
    private readonly modes: CreateModes,
  ) {
    try {
      // Before base.tar brings pg_wal: it is made here first, with the source's mode.
      mkdirSync(join(dir, 'archive_status'), { recursive: true, mode: modes.dir });
    } catch (e) {
      throw storageError('create directory', dir, e);
    }
  }

  open(name: string): void {
    this.path = join(this.dir, name);
    try {
      this.fd = openSync(this.path, 'w', this.modes.file);
    } catch (e) {
      throw storageError('create', this.path, e);
    }
  }

  write(data: Buffer): void {
    writeAll(this.fd!, data, this.path);
  }

  close(_written: number): void {
    if (this.fd === null) return;
    try {
      ftruncateSync(this.fd, this.segmentSize);
      if (this.sync) fsyncSync(this.fd);
      closeSync(this.fd);
    } catch (e) {
      throw storageError('finish WAL segment', this.path, e);
    } finally {
      this.fd = null;
    }
  }

  async finish(): Promise<void> {
    if (this.sync) fsyncPathSync(this.dir);
  }

  abort(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        /* ignore */
      }
      this.fd = null;
    }
  }
}
