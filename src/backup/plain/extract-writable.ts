// Extracts one tar file from the server into a directory as it streams:
// directories and files get the modes of their tar headers (the source's),
// exactly: the umask set for the run does not narrow them, as pg_basebackup
// chmods each member (a 0644 pg_hba.conf stays 0644). File data
// is written synchronously as it arrives (never buffered whole). Nothing is
// written outside the directory nor through a link (storage/confined-dir.ts
// holds that rule). The only links made are those of the tablespaces the
// server announced (pg_tblspc/<oid>), pointing at their (mapped) directories;
// any other link, and any hard link, fails the backup. Used for -F plain.
// When the files are synced once the backup is over, the kernel is asked to
// start writing each as it is written (write-behind.ts): the disk then works
// while the stream comes, and the final sync finds little left.

import { Writable } from 'node:stream';
import { closeSync } from 'node:fs';
import { TarParser } from '../../storage/tar/tar-parser.js';
import type { TarEntry } from '../../storage/tar/tar-header.js';
import { writeAll } from '../../storage/file-writable.js';
import { ConfinedDir, unsafeMember } from '../../storage/confined-dir.js';
import { storageError } from '../../common/errors.js';
import { STREAM_MODE_BITS } from '../../storage/posix/exact-mode.js';
import { WriteBehind } from '../../storage/posix/write-behind.js';

export interface ExtractOptions {
  tarName: string;
  root: string;
  /** For the base archive: the announced tablespaces, oid → the directory pg_tblspc/<oid> must point at. */
  tablespaceLinks?: ReadonlyMap<string, string> | undefined;
  /** Member directories that are links this run made (pg_wal → --waldir): their members are written to the directory. */
  mounts?: ReadonlyMap<string, string> | undefined;
  onEntry?: ((name: string) => void) | undefined;
  /** Files whose data is read past, not written (the source's own pgpitr files, own-files.ts). */
  skipFiles?: ReadonlySet<string> | undefined;
  onData?: ((bytes: number) => void) | undefined;
  warn: (message: string) => void;
  /** The files are synced after the extraction (not -N): start their writeback as they are written. */
  writeBehind?: boolean | undefined;
}

export class ExtractWritable extends Writable {
  private readonly parser: TarParser;
  private readonly dir: ConfinedDir;
  private readonly source: string;
  private fd: number | null = null;
  private filePath = '';
  /** The writeback of the current file (write-behind.ts). */
  private behind: WriteBehind | null = null;

  constructor(private readonly opts: ExtractOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.parser = new TarParser(opts.tarName);
    this.source = `tar file "${opts.tarName}"`;
    this.dir = new ConfinedDir(opts.root, this.source, opts.mounts);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    try {
      this.consume(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  /** What _write does, called directly (tar-stages.ts TarReading): throws its failure, the stream destroyed with it. */
  writeNow(chunk: Buffer): void {
    if (this.destroyed) throw this.errored ?? new Error(`write after the extraction of tar file "${this.opts.tarName}" was closed`);
    try {
      this.consume(chunk);
    } catch (e) {
      this.destroy(e as Error);
      throw e;
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.fd !== null || !this.parser.finished) {
      cb(storageError('extract', this.opts.tarName, new Error('tar file ended in the middle of a member')));
      return;
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.closeFile();
    cb(err);
  }

  private consume(chunk: Buffer): void {
    this.parser.feed(chunk);
    for (let ev = this.parser.next(); ev !== null; ev = this.parser.next()) {
      switch (ev.kind) {
        case 'entry':
          this.begin(ev.entry);
          break;
        case 'data':
          if (this.fd !== null) {
            writeAll(this.fd, ev.data, this.filePath);
            this.behind!.wrote(ev.data.length);
          }
          this.opts.onData?.(ev.data.length);
          break;
        case 'entry-end':
          this.closeFile();
          break;
        case 'end':
          break;
      }
    }
  }

  private begin(entry: TarEntry): void {
    const name = entry.name.replace(/\/+$/, '');
    this.opts.onEntry?.(name);
    switch (entry.type) {
      case 'directory':
        this.dir.mkdir(name, entry.mode & STREAM_MODE_BITS || 0o700);
        return;
      case 'file':
        if (this.opts.skipFiles?.has(name)) return;
        this.fd = this.dir.createFile(name, entry.mode & STREAM_MODE_BITS || 0o600);
        this.filePath = this.dir.pathOf(name);
        this.behind = new WriteBehind(this.fd, 0, this.opts.writeBehind === true);
        return;
      case 'symlink':
        this.dir.symlink(name, this.linkTarget(name, entry.linkname));
        return;
      case 'hardlink':
        throw unsafeMember(name, this.source, `a hard link (to "${entry.linkname}"); a base backup has none`);
      default:
        this.opts.warn(`skipping unsupported member "${name}" in tar file "${this.opts.tarName}"`);
    }
  }

  /** Where a link member may point: only pg_tblspc/<oid> of an announced tablespace, at its directory. */
  private linkTarget(name: string, linkname: string): string {
    const oid = /^pg_tblspc\/(\d+)$/.exec(name)?.[1];
    const dir = oid === undefined ? undefined : this.opts.tablespaceLinks?.get(oid);
    if (dir !== undefined) return dir;
    const why =
      oid === undefined || this.opts.tablespaceLinks === undefined
        ? `a symbolic link (to "${linkname}"); only the links of announced tablespaces (pg_tblspc/<oid>) are made`
        : `a link for tablespace ${oid} (to "${linkname}"), which the server did not announce in its tablespace list`;
    throw unsafeMember(name, this.source, why);
  }

  private closeFile(): void {
    if (this.fd !== null) {
      this.behind?.finish();
      const fd = this.fd;
      this.fd = null;
      try {
        closeSync(fd);
      } catch (e) {
        throw storageError('close', this.filePath, e);
      }
    }
  }
}
