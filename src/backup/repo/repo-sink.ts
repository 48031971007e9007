// A base backup into the repository: every member of the server's tar streams
// becomes a file of a backup set (backup-set/writer.ts) instead of a file on
// disk; tablespace tar files are stored under pg_tblspc/<oid>/; the server's
// backup_manifest is kept; with -X stream the WAL goes into the set's pg_wal.
// The only links accepted are pg_tblspc/<oid> for tablespaces the server
// announced; any other link, hard link or special file fails the backup.

import { PassThrough, Writable } from 'node:stream';
import type { BackupSink, FileStore } from '../sink.js';
import type { TablespaceHeader } from '../../protocol/base-backup-stream.js';
import type { SegmentStore } from '../wal/segment-store.js';
import { TarParser } from '../../storage/tar/tar-parser.js';
import type { TarEntry } from '../../storage/tar/tar-header.js';
import { writeWithBackpressure } from '../../storage/stream-util.js';
import { TarReading } from '../tar-stages.js';
import type { BackupSetWriter, FileMeta } from '../../repo/backup-set/writer.js';
import type { BackupSetManifest, ManifestFile } from '../../repo/backup-set/manifest.js';
import { PgpitrError } from '../../common/errors.js';

export class RepoSink implements BackupSink {
  private readonly announced = new Set<number>();
  private readonly tar = new TarReading();
  private manifestParts: Buffer[] = [];
  manifest: BackupSetManifest | null = null;

  constructor(
    private readonly writer: BackupSetWriter,
    private readonly onFile: (name: string) => void = () => {},
  ) {}

  prepareTablespaces(list: TablespaceHeader[]): void {
    for (const ts of list) {
      if (ts.oid === null || ts.location === null) continue;
      this.announced.add(ts.oid);
      this.writer.addTablespace(ts.oid, ts.location);
    }
  }

  tarBegin(name: string, ts: TablespaceHeader | null): void {
    const isBase = ts === null || ts.oid === null;
    if (!isBase && !this.announced.has(ts.oid!)) throw new PgpitrError('ERR_PROTOCOL', `tar file "${name}" is for a tablespace the server did not list`);
    const prefix = isBase ? '' : `pg_tblspc/${ts.oid}/`;
    this.tar.begin(name, new MemberRouter(name, prefix, isBase, this.announced, this.writer, this.onFile));
  }

  tarData(chunk: Buffer): void | Promise<void> {
    return this.tar.data(chunk);
  }

  tarEnd(): Promise<void> {
    return this.tar.end();
  }

  manifestBegin(): void {
    this.manifestParts = [];
  }

  manifestData(chunk: Buffer): void {
    this.manifestParts.push(Buffer.from(chunk));
  }

  async manifestEnd(): Promise<void> {
    const parts = this.manifestParts;
    this.manifestParts = [];
    await this.writer.addServerManifest(parts);
  }

  fileStore(): FileStore {
    const w = this.writer;
    return {
      encoding: w.encoding,
      releasesChunks: w.releasesChunks,
      isSmall: (size) => w.isSmall(size),
      addSmall: (meta, data) => {
        this.onFile(meta.path);
        return w.addSmallFile(meta, data);
      },
      addSmallStored: (meta, stored, digests, length) => {
        this.onFile(meta.path);
        return w.addStoredSmallFile(meta, stored, digests, length);
      },
      addLarge: (meta, stored, digests) => {
        this.onFile(meta.path);
        return w.addEncodedFile(meta, stored, digests);
      },
      resuming: w.resuming,
      previous: (path) => w.previous(path),
      keep: (meta, copy) => {
        this.onFile(meta.path);
        return w.keep(meta, copy);
      },
      unchanged: (meta) => w.unchanged(meta),
      reference: (meta, entry) => {
        this.onFile(meta.path);
        w.reference(meta, entry);
      },
    };
  }

  walStore(segmentSize: number): SegmentStore {
    return new SetSegmentStore(this.writer, segmentSize);
  }

  async finish(): Promise<void> {
    this.manifest = await this.writer.finish();
  }

  abort(): void {
    this.tar.destroy();
    void this.writer.abort();
  }
}

/** Parses one tar stream and hands each member to the set writer. */
class MemberRouter extends Writable {
  private readonly parser: TarParser;
  private small: { entry: TarEntry; path: string; parts: Buffer[] } | null = null;
  private large: PassThrough | null = null;
  /** A member a diff or incr backup takes from its prior backup: its bytes are passed over. */
  private unchanged: { meta: FileMeta; entry: ManifestFile } | null = null;

  constructor(
    private readonly tarName: string,
    private readonly prefix: string,
    private readonly isBase: boolean,
    private readonly announced: Set<number>,
    private readonly writer: BackupSetWriter,
    private readonly onFile: (name: string) => void,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.parser = new TarParser(tarName);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.route(chunk).then(() => cb(), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.small || this.large || this.unchanged) cb(new PgpitrError('ERR_PROTOCOL', `tar file "${this.tarName}" ended inside a member`));
    else cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.large?.destroy(err ?? undefined);
    cb(err);
  }

  private async route(chunk: Buffer): Promise<void> {
    this.parser.feed(chunk);
    for (let ev = this.parser.next(); ev !== null; ev = this.parser.next()) {
      if (ev.kind === 'entry') await this.beginMember(ev.entry);
      else if (ev.kind === 'data') {
        if (this.unchanged) continue;
        if (this.small) this.small.parts.push(Buffer.from(ev.data));
        else if (this.large) await writeWithBackpressure(this.large, ev.data);
      } else if (ev.kind === 'entry-end') await this.endMember();
    }
  }

  private async beginMember(entry: TarEntry): Promise<void> {
    const name = entry.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    const path = this.prefix + name;
    if (entry.type === 'directory') {
      if (name !== '' && name !== '.') this.writer.addDirectory(path, entry.mode);
      return;
    }
    if (entry.type === 'symlink') {
      const m = /^pg_tblspc\/(\d+)$/.exec(name);
      if (this.isBase && m && this.announced.has(Number(m[1]))) return; // the tablespace itself is recorded
      throw new PgpitrError('ERR_UNSAFE_PATH', `refusing link "${entry.name}" -> "${entry.linkname}" in tar file "${this.tarName}"`, {
        hint: m ? `the server did not announce tablespace ${m[1]}` : 'a base backup holds no links but pg_tblspc/<oid> for its tablespaces',
      });
    }
    if (entry.type !== 'file') {
      throw new PgpitrError('ERR_UNSAFE_PATH', `refusing member "${entry.name}" of tar file "${this.tarName}": not a regular file, directory or tablespace link`);
    }
    this.onFile(path);
    const meta = { path, size: entry.size, mode: entry.mode, mtime: entry.mtime };
    const same = this.writer.unchanged(meta);
    if (same) this.unchanged = { meta, entry: same };
    else if (this.writer.isSmall(entry.size)) this.small = { entry, path, parts: [] };
    else {
      this.large = quiet(new PassThrough({ highWaterMark: 1024 * 1024 }));
      await this.writer.addLargeFile(meta, this.large);
    }
  }

  private async endMember(): Promise<void> {
    if (this.unchanged) {
      this.writer.reference(this.unchanged.meta, this.unchanged.entry);
      this.unchanged = null;
    } else if (this.small) {
      const { entry, path, parts } = this.small;
      this.small = null;
      await this.writer.addSmallFile({ path, size: entry.size, mode: entry.mode, mtime: entry.mtime }, Buffer.concat(parts));
    } else if (this.large) {
      const l = this.large;
      this.large = null;
      l.end();
    }
  }
}

/** -X stream into the set: each segment a file pg_wal/<name>, zero-filled when the stream stops mid-segment. */
class SetSegmentStore implements SegmentStore {
  private out: PassThrough | null = null;

  constructor(
    private readonly writer: BackupSetWriter,
    private readonly segmentSize: number,
  ) {}

  async open(name: string): Promise<void> {
    this.out = quiet(new PassThrough({ highWaterMark: 1024 * 1024 }));
    await this.writer.addLargeFile({ path: `pg_wal/${name}`, size: this.segmentSize, mode: 0o600, mtime: Math.floor(Date.now() / 1000) }, this.out);
  }

  write(data: Buffer): void | Promise<void> {
    return writeWithBackpressure(this.out!, Buffer.from(data));
  }

  /** The history file goes into the set's pg_wal beside the segments (restore puts it where the server reads it). */
  async whole(name: string, data: Buffer): Promise<void> {
    const out = quiet(new PassThrough());
    const added = this.writer.addLargeFile({ path: `pg_wal/${name}`, size: data.length, mode: 0o600, mtime: Math.floor(Date.now() / 1000) }, out);
    out.end(data);
    await added;
  }

  async close(written: number): Promise<void> {
    const left = this.segmentSize - written;
    if (left > 0) await writeWithBackpressure(this.out!, Buffer.alloc(left));
    this.out!.end();
    this.out = null;
  }

  async finish(): Promise<void> {}

  abort(): void {
    this.out?.destroy();
  }
}

/**
 * A stream fed to BackupSetWriter.addLargeFile, which destroys it with its own failure (no room in
 * the repository) and rejects with it: the feeder learns it from its next write, and the backup
 * fails cleanly (stored files removed, the record failed); not once more as an 'error' event
 * nobody listens to, which ended the process as a crash.
 */
function quiet(s: PassThrough): PassThrough {
  return s.on('error', () => {});
}
