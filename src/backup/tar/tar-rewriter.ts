// Passes a tar archive through unchanged except for the members it is told to
// edit (postgresql.auto.conf for -R) and the members it appends before the
// end-of-archive marker (standby.signal, or backup_manifest when writing a
// single tar to stdout), in place of a member of the same name in the input
// (a standby's own standby.signal). Edited members are small and buffered; all other
// member data flows through as views of the input chunks.

import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { TarParser } from '../../storage/tar/tar-parser.js';
import { TAR_END, encodeHeader, paddingFor } from '../../storage/tar/tar-header.js';
import type { TarEntry } from '../../storage/tar/tar-header.js';

export interface AppendedMember {
  name: string;
  content: Buffer;
  mode?: number;
}

export interface TarRewriteOptions {
  tarName: string;
  /** name → new content from old content (member must be a regular file). */
  edit?: Map<string, (old: Buffer) => Buffer>;
  /** Members appended at the end; members edited but absent are appended too. */
  append: AppendedMember[];
  /**
   * The mode of the members it makes (appended, or edited but absent) when not given: pg_basebackup
   * injects them with pg_file_create_mode (0600, 0640 with group access). 0600 when not told.
   */
  mode?: number;
}

export class TarRewriter extends Transform {
  private readonly parser: TarParser;
  private editing: { entry: TarEntry; parts: Buffer[]; fn: (old: Buffer) => Buffer } | null = null;
  private passingData = false;
  /** A member of the input that an appended one replaces (the source's own standby.signal): left out. */
  private dropping = false;
  private pad = 0;
  private readonly seen = new Set<string>();
  private readonly appended: Set<string>;

  constructor(private readonly opts: TarRewriteOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.parser = new TarParser(opts.tarName);
    this.appended = new Set(opts.append.map((m) => m.name));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.parser.feed(chunk);
      for (let ev = this.parser.next(); ev !== null; ev = this.parser.next()) {
        if (ev.kind === 'entry') {
          const fn = ev.entry.type === 'file' ? this.opts.edit?.get(ev.entry.name) : undefined;
          this.seen.add(ev.entry.name);
          if (this.appended.has(ev.entry.name)) {
            this.dropping = true;
          } else if (fn) {
            this.editing = { entry: ev.entry, parts: [], fn };
          } else {
            this.push(ev.header);
            this.passingData = true;
            this.pad = paddingFor(ev.entry.type === 'file' ? ev.entry.size : 0);
          }
        } else if (ev.kind === 'data') {
          if (this.dropping) continue;
          if (this.editing) this.editing.parts.push(Buffer.from(ev.data));
          else this.push(ev.data);
        } else if (ev.kind === 'entry-end') {
          if (this.dropping) this.dropping = false;
          else if (this.editing) {
            const { entry, parts, fn } = this.editing;
            this.editing = null;
            this.pushMember(entry, fn(Buffer.concat(parts)));
          } else if (this.passingData) {
            if (this.pad > 0) this.push(Buffer.alloc(this.pad));
            this.passingData = false;
          }
        }
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    const now = Math.floor(Date.now() / 1000);
    const mode = this.opts.mode ?? 0o600;
    for (const [name, fn] of this.opts.edit ?? []) {
      if (!this.seen.has(name)) this.pushMember({ name, type: 'file', size: 0, mode, mtime: now, linkname: '' }, fn(Buffer.alloc(0)));
    }
    for (const m of this.opts.append) {
      this.pushMember({ name: m.name, type: 'file', size: 0, mode: m.mode ?? mode, mtime: now, linkname: '' }, m.content);
    }
    this.push(TAR_END);
    cb();
  }

  private pushMember(entry: TarEntry, content: Buffer): void {
    this.push(encodeHeader({ ...entry, size: content.length }));
    this.push(content);
    const pad = paddingFor(content.length);
    if (pad > 0) this.push(Buffer.alloc(pad));
  }
}
