// Extracts one tar archive from the server into a directory as it streams:
// directories and files are created with the server's permissions, file data
// is written synchronously as it arrives (never buffered whole), and symbolic
// links are only created for tablespaces (pg_tblspc/<oid>), pointing at the
// mapped location. Used for -F plain.

import { Writable } from 'node:stream';
import { mkdirSync, openSync, closeSync, symlinkSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { TarParser } from '../../storage/tar/tar-parser.js';
import type { TarEntry } from '../../storage/tar/tar-header.js';
import { writeAll } from '../../storage/file-writable.js';
import { storageError } from '../../common/errors.js';
import { resolveInside } from './safe-path.js';

export interface ExtractOptions {
  archiveName: string;
  root: string;
  /** For the base archive: where pg_tblspc/<oid> links must point (oid → directory). */
  tablespaceLinks?: Map<string, string> | undefined;
  /** With --waldir, pg_wal is already a link to it: keep it. */
  keepExistingWalLink?: boolean | undefined;
  onEntry?: ((name: string) => void) | undefined;
  onData?: ((bytes: number) => void) | undefined;
  warn: (message: string) => void;
}

export class ExtractWritable extends Writable {
  private readonly parser: TarParser;
  private fd: number | null = null;
  private filePath = '';
  private readonly madeDirs = new Set<string>();

  constructor(private readonly opts: ExtractOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.parser = new TarParser(opts.archiveName);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    try {
      this.consume(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.fd !== null || !this.parser.finished) {
      cb(storageError('extract', this.opts.archiveName, new Error('archive ended in the middle of a member')));
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
          if (this.fd !== null) writeAll(this.fd, ev.data, this.filePath);
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
    const path = resolveInside(this.opts.root, entry.name, this.opts.archiveName);
    const name = entry.name.replace(/\/+$/, '');
    this.opts.onEntry?.(name);
    switch (entry.type) {
      case 'directory':
        if (this.opts.keepExistingWalLink && name === 'pg_wal' && isLink(path)) return;
        this.mkdir(path, entry.mode & 0o777 || 0o700);
        return;
      case 'file': {
        this.mkdir(dirname(path), 0o700);
        try {
          this.fd = openSync(path, 'w', entry.mode & 0o777 || 0o600);
        } catch (e) {
          throw storageError('create', path, e);
        }
        this.filePath = path;
        return;
      }
      case 'symlink': {
        const m = /^pg_tblspc\/(\d+)$/.exec(name);
        if (m && this.opts.tablespaceLinks) {
          const target = this.opts.tablespaceLinks.get(m[1]!) ?? entry.linkname;
          this.mkdir(dirname(path), 0o700);
          try {
            symlinkSync(target, path);
          } catch (e) {
            throw storageError('create symbolic link', path, e);
          }
          return;
        }
        this.opts.warn(`skipping symbolic link "${name}" -> "${entry.linkname}" in archive "${this.opts.archiveName}": only tablespace links are restored`);
        return;
      }
      default:
        this.opts.warn(`skipping unsupported member "${name}" in archive "${this.opts.archiveName}"`);
    }
  }

  private mkdir(path: string, mode: number): void {
    if (this.madeDirs.has(path)) return;
    try {
      mkdirSync(path, { recursive: true, mode });
    } catch (e) {
      throw storageError('create directory', path, e);
    }
    this.madeDirs.add(path);
  }

  private closeFile(): void {
    if (this.fd !== null) {
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

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
