// -F plain: every tar file is extracted as it arrives — base.tar into the
// target directory, each tablespace into its (mapped) directory, WAL streamed
// into pg_wal (or --waldir). The manifest is written as backup_manifest.tmp and
// renamed only after everything is synced, as pg_basebackup does.

import { dirname, isAbsolute, join, resolve } from 'node:path';
import { existsSync, lstatSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import type { BackupSink } from '../sink.js';
import type { BaseBackupOptions } from '../options.js';
import type { OutputDirs } from '../target-dir.js';
import type { TablespaceHeader } from '../../protocol/base-backup-stream.js';
import type { SegmentStore } from '../wal/segment-store.js';
import { DirSegmentStore } from '../wal/dir-segment-store.js';
import { ExtractWritable } from './extract-writable.js';
import { FileWritable } from '../../storage/file-writable.js';
import { writeWithBackpressure, endWritable } from '../../storage/stream-util.js';
import { syncTree, writeFileAtomicSync, fsyncPathSync } from '../../storage/durable.js';
import { TarReading } from '../tar-stages.js';
import { STANDBY_SIGNAL, AUTO_CONF, appendToAutoConf, recoverySettingsText } from '../../postgres/recovery-config.js';
import { PgpitrError, storageError } from '../../common/errors.js';
import { OWN_FILES } from '../own-files.js';

export class PlainSink implements BackupSink {
  private readonly tablespaceDirs = new Map<string, string>(); // oid → directory
  private readonly tar = new TarReading();
  private manifest: FileWritable | null = null;
  private segments: DirSegmentStore | null = null;
  private walDir: string;

  constructor(
    private readonly target: string,
    private readonly opts: BaseBackupOptions,
    private readonly dirs: OutputDirs,
    private readonly hooks: { onFile(name: string): void; warn(message: string): void },
  ) {
    this.walDir = join(target, 'pg_wal');
    // Resumed, the interrupted run's pg_wal (its WAL is never kept) is made again as this run's.
    const link = opts.resume ? pgWalLink(this.walDir) : null;
    if (opts.walDir) {
      const walDir = dirs.prepare(opts.walDir, 'WAL directory');
      try {
        if (link !== walDir) {
          if (link !== null) rmSync(this.walDir, { recursive: true, force: true });
          symlinkSync(walDir, this.walDir);
        }
      } catch (e) {
        throw storageError('create symbolic link', this.walDir, e);
      }
      this.walDir = walDir;
    } else if (link !== null && link !== '') {
      try {
        unlinkSync(this.walDir);
      } catch (e) {
        throw storageError('remove the link', this.walDir, e);
      }
    }
  }

  prepareTablespaces(list: TablespaceHeader[]): void {
    for (const ts of list) {
      if (ts.oid === null || ts.location === null) continue;
      const dir = isAbsolute(ts.location) ? this.mapped(ts.location) : this.inPlace(ts.oid, ts.location);
      this.tablespaceDirs.set(String(ts.oid), this.dirs.prepare(dir, `tablespace directory (oid ${ts.oid})`));
    }
  }

  private mapped(location: string): string {
    const mapping = this.opts.tablespaceMappings.find((m) => resolve(m.oldDir) === resolve(location));
    return mapping ? mapping.newDir : location;
  }

  /**
   * An in-place tablespace (allow_in_place_tablespaces; announced on its own by 16+ servers, with
   * its location relative to the data directory): extracted under the target, as pg_basebackup
   * does, never relative to the working directory; -T does not apply to it.
   */
  private inPlace(oid: number, location: string): string {
    if (location !== `pg_tblspc/${oid}`) {
      throw new PgpitrError('ERR_PROTOCOL', `the server announced tablespace ${oid} at the relative location "${location}"; an in-place tablespace is pg_tblspc/${oid} of the data directory`);
    }
    return join(this.target, location);
  }

  directRoot(ts: TablespaceHeader | null): string {
    if (ts === null || ts.oid === null) return this.target;
    const dir = this.tablespaceDirs.get(String(ts.oid));
    if (dir === undefined) throw new PgpitrError('ERR_INTERNAL', `tablespace ${ts.oid} was not announced`);
    return dir;
  }

  tarBegin(name: string, ts: TablespaceHeader | null): void {
    const isBase = ts === null || ts.oid === null;
    const root = isBase ? this.target : this.tablespaceDirs.get(String(ts.oid));
    if (root === undefined) throw new PgpitrError('ERR_PROTOCOL', `tar file "${name}" is for a tablespace the server did not list`);
    const extract = new ExtractWritable({
      tarName: name,
      root,
      tablespaceLinks: isBase ? this.tablespaceDirs : undefined,
      // With --waldir, pg_wal is our link to it: what the tar file has under pg_wal goes there, not through the link.
      mounts: isBase && this.opts.walDir !== undefined ? new Map([['pg_wal', this.walDir]]) : undefined,
      onEntry: (n) => this.hooks.onFile(n),
      // The source's own state file (a cluster made by pgpitr basebackup) must not replace this backup's.
      skipFiles: isBase ? OWN_FILES : undefined,
      warn: this.hooks.warn,
      writeBehind: !this.opts.noSync,
    });
    this.tar.begin(name, extract);
  }

  /**
   * Tar data is extracted with synchronous writes as it comes (ExtractWritable): nothing of a
   * chunk is kept once tarData() returned, unless the server compressed the tar files (the
   * decompressor holds its input).
   */
  lendTarData(): boolean {
    return this.opts.compression?.location !== 'server';
  }

  tarData(chunk: Buffer): void | Promise<void> {
    return this.tar.data(chunk);
  }

  tarEnd(): Promise<void> {
    return this.tar.end();
  }

  manifestBegin(): void {
    this.manifest = new FileWritable(join(this.target, 'backup_manifest.tmp'), !this.opts.noSync, this.dirs.modes.file);
  }

  manifestData(chunk: Buffer): void | Promise<void> {
    return writeWithBackpressure(this.manifest!, chunk);
  }

  async manifestEnd(): Promise<void> {
    await endWritable(this.manifest!);
  }

  walStore(segmentSize: number): SegmentStore {
    this.segments = new DirSegmentStore(this.walDir, segmentSize, !this.opts.noSync, this.dirs.modes);
    return this.segments;
  }

  async finish(): Promise<void> {
    if (this.opts.writeRecoveryConf) {
      // pg_basebackup appends to postgresql.auto.conf and rewrites standby.signal in place: what
      // came from the source keeps its mode; a file made new has the cluster's (pg_file_create_mode).
      const auto = join(this.target, AUTO_CONF);
      const old = existsSync(auto) ? readFileSync(auto) : Buffer.alloc(0);
      writeFileAtomicSync(auto, appendToAutoConf(old, recoverySettingsText(this.opts.connection, this.opts.slot, this.opts.recoveryConfDbname)), false, this.modeOf(auto));
      const signal = join(this.target, STANDBY_SIGNAL);
      writeFileAtomicSync(signal, '', false, this.modeOf(signal));
    }
    if (!this.opts.noSync) {
      await syncTree(this.target);
      for (const dir of this.tablespaceDirs.values()) await syncTree(dir);
      if (this.opts.walDir) await syncTree(this.walDir);
    }
    if (this.manifest) {
      const tmp = join(this.target, 'backup_manifest.tmp');
      try {
        renameSync(tmp, join(this.target, 'backup_manifest'));
      } catch (e) {
        throw storageError('rename into place', tmp, e);
      }
      if (!this.opts.noSync) fsyncPathSync(this.target);
    }
  }

  /** The mode of the file at `path` if there is one (not a link), else that of a file this run makes. */
  private modeOf(path: string): number {
    try {
      const st = lstatSync(path);
      if (st.isFile()) return st.mode & 0o777;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('inspect', path, e);
    }
    return this.dirs.modes.file;
  }

  abort(): void {
    this.tar.destroy();
    this.manifest?.destroy();
    // WAL the stream still hands over after the failure is not written where the clean-up removes files.
    this.segments?.abort();
  }
}

/** What a resumed target's pg_wal is: a link (where it points, resolved), a directory (''), or nothing (null). */
function pgWalLink(path: string): string | null {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? resolve(dirname(path), readlinkSync(path)) : '';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw storageError('inspect', path, e);
  }
}
