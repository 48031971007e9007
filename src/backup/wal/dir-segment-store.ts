// Streamed WAL segments as files in a directory (pg_wal of a plain backup).

import { openSync, closeSync, fsyncSync, mkdirSync } from 'node:fs';
import { writeFileAtomicSync } from '../../storage/durable.js';
import { join } from 'node:path';
import type { SegmentStore } from './segment-store.js';
import { writeAll } from '../../storage/file-writable.js';
import { fsyncPathSync } from '../../storage/durable.js';
import { PgpitrError, storageError } from '../../common/errors.js';
import type { CreateModes } from '../../postgres/data-dir-mode.js';

const ZEROS = Buffer.alloc(1024 * 1024);

export class DirSegmentStore implements SegmentStore {
  private fd: number | null = null;
  private path = '';
  private name = '';

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
    this.throwIfAborted();
    this.name = name;
    this.path = join(this.dir, name);
    try {
      this.fd = openSync(this.path, 'w', this.modes.file);
    } catch (e) {
      throw storageError('create', this.path, e);
    }
  }

  write(data: Buffer): void {
    this.throwIfAborted();
    writeAll(this.fd!, data, this.path);
  }

  close(written: number): void {
    if (this.fd === null) return;
    try {
      // Zeros written, not a hole (ftruncate): blocks allocated as pg_basebackup and PostgreSQL do, so
      // that a server writing into the rest of this segment later never meets a full disk there.
      for (let at = written; at < this.segmentSize; ) {
        const n = Math.min(ZEROS.length, this.segmentSize - at);
        writeAll(this.fd, ZEROS.subarray(0, n), this.path, at);
        at += n;
      }
      if (this.sync) fsyncSync(this.fd);
      closeSync(this.fd);
    } catch (e) {
      throw storageError('finish WAL segment', this.path, e);
    } finally {
      this.fd = null;
    }
    if (written === this.segmentSize) this.markArchived(this.name);
  }

  whole(name: string, data: Buffer): void {
    this.throwIfAborted();
    const path = join(this.dir, name);
    try {
      writeFileAtomicSync(path, data, this.sync, this.modes.file);
    } catch (e) {
      throw storageError('write', path, e);
    }
    this.markArchived(name);
  }

  /** archive_status/<name>.done, as pg_basebackup writes it: the restored copy does not archive the file again. */
  private markArchived(name: string): void {
    const path = join(this.dir, 'archive_status', `${name}.done`);
    try {
      closeSync(openSync(path, 'w', this.modes.file));
    } catch (e) {
      throw storageError('create', path, e);
    }
  }

  async finish(): Promise<void> {
    if (this.sync) {
      fsyncPathSync(join(this.dir, 'archive_status'));
      fsyncPathSync(this.dir);
    }
  }

  /** Once aborted, for good: the backup's clean-up may be emptying the directory. */
  private aborted = false;

  private throwIfAborted(): void {
    if (this.aborted) throw new PgpitrError('ERR_INTERRUPTED', `WAL streaming into ${this.dir} was stopped: the backup failed`);
  }

  abort(): void {
    this.aborted = true;
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
