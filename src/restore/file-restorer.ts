// Writes a backup set's files into a data directory and its tablespace
// directories, N at a time, each checked against its recorded CRC-32C (its digest
// in older sets) as it is written, large ones cut in pieces across the copiers
// (file-pieces.ts); with delta, a file already there with the recorded size and
// digest is left alone and what the backup does not hold is removed. pg_control is
// not written here: the engine writes it last, so that a restore that stops
// anywhere before leaves a directory PostgreSQL refuses to start.
//
// Nothing is written through a link: every directory of the manifest is made a
// real directory (a link found in its place, in a delta target, is removed),
// files are opened with O_NOFOLLOW, and the only links made are
// pg_tblspc/<oid>, to the tablespace directories restore itself prepared.

import { constants, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../repo/backup-set/content-digest.js';
import { PgpitrError, storageError } from '../common/errors.js';
import { fsyncPathIfPresent, fsyncPath } from '../storage/durable.js';
import { bundledLast, type BackupSetReader, type ThreadSource } from '../repo/backup-set/reader.js';
import type { ManifestFile } from '../repo/backup-set/manifest.js';
import { CopyThread } from './copy-thread.js';
import type { CopyReply } from './copy-job.js';
import { collectAfterPlan } from '../common/full-collection.js';
import { combinedCrc, PIECE_MIN_FILE, piecesOf } from './file-pieces.js';
import type { FilePiece } from './file-pieces.js';
import { crc32cText } from '../storage/filter/crc32c.js';
import { STREAM_MODE_BITS } from '../storage/posix/exact-mode.js';
import { createFresh, lstatOrNull, makeRealDirectory, makeRoot, placeLink, removeIfPresent, sameContent } from './target-files.js';
import { removeExtras } from './delta-extras.js';
import { isRestoreFile } from './restore-target-dir.js';

export const PG_CONTROL = 'global/pg_control';

export interface RestoreLayout {
  target: string;
  /** oid → the directory the tablespace is restored into. */
  tablespaceDirs: Map<number, string>;
  /** Where pg_wal's content goes, pg_wal being a link to it (--waldir); absent: pg_wal is a directory. */
  walDir?: string;
}

export interface FileRestoreOptions {
  processMax: number;
  delta: boolean;
  /** Files of the target a delta leaves alone although the backup does not hold them. */
  keep?: string[];
  /** Called once the roots outside the data directory are made, before anything in it changes (the restore's marker). */
  beforeChanges?: () => void;
  /** fsync each file as it is written (the caller then syncs only the directories). */
  sync?: boolean;
  /** Copier threads the caller started early (they boot while it plans); used first, and stopped with the others. */
  threads?: CopyThread[];
  /** Files not read from the backup but written as zeros of their size, sparse (selective restore: database-selection.ts). */
  zeroed?(path: string): boolean;
  onFile?(path: string, bytes: number, written: boolean): void;
}

export interface FileRestoreResult {
  written: number;
  unchanged: number;
  removed: number;
  /** Files written as zeros (FileRestoreOptions.zeroed); not counted in written. */
  zeroed: number;
  bytesWritten: number;
  /** Files restored by this thread's streams rather than a copier thread (bundled files read once per bundle, forms the copiers hand back). */
  streamed: number;
  /** Why copiers handed files back, with how many (a form only the streaming decoders take). */
  handedBack: Record<string, number>;
}

/** A large file cut across the copiers (file-pieces.ts), while its pieces are under way. */
interface CutFile {
  f: ManifestFile;
  dest: string;
  src: ThreadSource;
  pieces: FilePiece[];
  crcs: number[];
  /** Pieces not answered yet. */
  left: number;
  /** A copier handed a piece back (a form only the streaming decoders take): the file is then restored whole here. */
  fallback: boolean;
}

export class FileRestorer {
  /** Directories made above the tablespace and WAL directories (missing levels of their paths): restore's to give to the cluster's owner. */
  readonly madeAbove: string[] = [];
  /** The tablespace and WAL roots outside the data directory as made or found (device, inode): given away only if still those. */
  readonly outsideIds = new Map<string, { dev: number; ino: number }>();

  constructor(
    private readonly reader: BackupSetReader,
    private readonly layout: RestoreLayout,
  ) {}

  /**
   * The modification time a restored file gets: the restore's, never the one recorded (as
   * pg_basebackup's plain format). A diff or incr backup trusts a file's size and time to say its
   * content is the prior backup's (prior-choice.ts): a standby rebuilt from another server's
   * backup, given back that server's times, could match the prior's size and time for a file of
   * other content; and a time recorded in the second the backup read the file does not say which
   * content it holds. A file written by the restore is then copied whole by the next incr.
   */
  private mtimeOf(_f: ManifestFile): number {
    return Math.floor(Date.now() / 1000);
  }

  /** Where a cluster path goes: under its tablespace's directory, or under the target. */
  destination(path: string): string {
    const wal = this.layout.walDir;
    if (wal !== undefined && (path === 'pg_wal' || path.startsWith('pg_wal/'))) return join(wal, path.slice('pg_wal'.length));
    const m = /^pg_tblspc\/(\d+)\/(.+)$/.exec(path);
    if (m) {
      const dir = this.layout.tablespaceDirs.get(Number(m[1]));
      if (dir !== undefined) return join(dir, m[2]!);
    }
    return join(this.layout.target, path);
  }

  /** Everything but pg_control. */
  async restore(o: FileRestoreOptions): Promise<FileRestoreResult> {
    const result: FileRestoreResult = { written: 0, unchanged: 0, removed: 0, zeroed: 0, bytesWritten: 0, streamed: 0, handedBack: {} };
    const m = this.reader.manifest;
    // The roots are the user's: they may be links (a mount point elsewhere), and are only created.
    // Those outside the data directory first: one that cannot be made (no permission above it)
    // fails the restore before a delta has touched the old cluster.
    const version = m.files.find((f) => f.path === 'PG_VERSION');
    const rootMode = version && version.mode & 0o040 ? 0o750 : 0o700;
    for (const dir of [...this.layout.tablespaceDirs.values(), ...(this.layout.walDir !== undefined ? [this.layout.walDir] : [])]) {
      this.madeAbove.push(...(await makeRoot(dir, rootMode, o.sync ?? false)));
      const st = await fsp.stat(dir);
      this.outsideIds.set(dir, { dev: st.dev, ino: st.ino });
    }
    o.beforeChanges?.();
    if (o.delta) {
      // First of all: from now on the directory can never be started as the old cluster. A global
      // that is a link (made real below) goes itself: pg_control through it is another cluster's.
      const global = join(this.layout.target, 'global');
      if ((await lstatOrNull(global))?.isSymbolicLink()) {
        await removeIfPresent(global);
        await fsyncPath(this.layout.target);
      } else {
        await removeIfPresent(join(this.layout.target, PG_CONTROL));
        await fsyncPathIfPresent(global); // that removal durable before anything else changes
      }
    }
    await makeRoot(this.layout.target, rootMode, o.sync ?? false);
    // The tablespace links before anything inside a tablespace: a rerun recognises the directory as this cluster's.
    await makeRealDirectory(join(this.layout.target, 'pg_tblspc'), 0o700);
    for (const [oid, dir] of this.layout.tablespaceDirs) await placeLink(join(this.layout.target, 'pg_tblspc', String(oid)), dir, 'tablespace');
    if (this.layout.walDir !== undefined) await placeLink(join(this.layout.target, 'pg_wal'), this.layout.walDir, 'WAL directory');
    const dirs = [...m.directories].sort((a, b) => a.path.split('/').length - b.path.split('/').length);
    for (const d of dirs) {
      const tsp = /^pg_tblspc\/(\d+)$/.exec(d.path); // a link made above, or an in-place tablespace's directory
      if (tsp && this.layout.tablespaceDirs.has(Number(tsp[1]))) continue;
      if (d.path === 'pg_wal' && this.layout.walDir !== undefined) continue;
      await makeRealDirectory(this.destination(d.path), d.mode);
    }
    if (o.delta) result.removed = await removeExtras(m, this.layout, (path) => this.destination(path), o.keep ?? []);

    // Largest first, so that the last file to finish is a small one; with no local files (object
    // storage), the small ones bundle by bundle, each bundle fetched once.
    // Restore's own lock and marker, should a backup hold them, are not given back: they would replace this restore's.
    const files = m.files.filter((f) => f.path !== PG_CONTROL && !isRestoreFile(f.path));
    // Bundles are held until each of their files has been read: not for files read last (pg_control) or never.
    for (const f of m.files) if (f.path === PG_CONTROL || isRestoreFile(f.path)) this.reader.release(f);
    const queue = this.reader.hasLocalFiles ? files.sort((a, b) => b.size - a.size) : bundledLast(files);
    collectAfterPlan(queue.length); // the manifest's parse and the plan are garbage now (full-collection.ts)
    const copiers = Math.max(1, Math.min(o.processMax, queue.length));
    // Copier threads decrypt, decode, hash and write; this thread reads the network for them, and
    // restores itself only what they hand back (small files of a bundle it fetches or decrypts
    // once, forms only the streaming decoders take).
    const threads: CopyThread[] = [];
    let next = 0;
    // Pieces of a large file cut across the copiers: taken before the next file.
    const pieces: { cut: CutFile; i: number }[] = [];
    const sync = o.sync ?? false;
    // Once one worker failed, the others take nothing more: the failure is reported, and the restore
    // lock released, only once none of them is writing (a rerun started at once must not meet one).
    let failed = false;
    const worker = async (thread: CopyThread) => {
      for (; !failed; ) {
        const piece = pieces.shift();
        if (piece) {
          await this.copyPiece(thread, piece.cut, piece.i, sync, result, o.onFile);
          continue;
        }
        if (next >= queue.length) break;
        const f = queue[next++]!;
        const dest = this.destination(f.path);
        if (o.zeroed?.(f.path)) {
          this.reader.release(f);
          await this.writeZeroed(f, dest, sync);
          result.zeroed++;
          o.onFile?.(f.path, 0, true);
          continue;
        }
        const cut = await this.cutFile(f, dest, o.delta);
        if (cut) {
          for (let i = 1; i < cut.pieces.length; i++) pieces.push({ cut, i });
          await this.copyPiece(thread, cut, 0, sync, result, o.onFile);
          continue;
        }
        let outcome = await this.copyOnThread(thread, f, dest, o.delta, o.sync ?? false, result.handedBack);
        if (outcome === null) {
          result.streamed++;
          outcome = await this.copyHere(f, dest, o.delta, o.sync ?? false);
        }
        if (outcome === 'unchanged') {
          result.unchanged++;
          o.onFile?.(f.path, f.size, false);
          continue;
        }
        result.written++;
        result.bytesWritten += f.size;
        o.onFile?.(f.path, f.size, true);
      }
    };
    const started = o.threads ?? [];
    try {
      for (let i = 0; i < copiers && queue.length > 0; i++) threads.push(started[i] ?? new CopyThread());
      const settled = await Promise.allSettled(
        threads.map((t) =>
          worker(t).catch((e: unknown) => {
            failed = true;
            throw e;
          }),
        ),
      );
      const first = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (first) throw first.reason;
    } finally {
      await Promise.all([...new Set([...threads, ...started])].map((t) => t.stop()));
    }
    return result;
  }

  /** On a copier thread; null when it hands the file back (a form only the streaming decoders take). */
  private async copyOnThread(thread: CopyThread, f: ManifestFile, dest: string, delta: boolean, sync: boolean, handedBack: Record<string, number>): Promise<'written' | 'unchanged' | null> {
    const src = await this.reader.threadSource(f);
    if (src === null) return null;
    const reply = await thread.run(
      {
        id: 0, source: src.file, offset: src.offset, length: src.length, compression: src.compression, decrypt: src.decrypt,
        dest, mode: f.mode, mtime: this.mtimeOf(f), size: f.size, digest: digestOf(f)!, crc32c: f.crc32c ?? null, delta, sync, piece: null,
      },
      src.open,
    );
    switch (reply.status) {
      case 'written':
      case 'unchanged':
        return reply.status;
      case 'fallback':
        handedBack[reply.why] = (handedBack[reply.why] ?? 0) + 1;
        return null;
      default:
        throw this.copyError(reply, f, dest);
    }
  }

  /** What a copier's 'failed' (or unasked 'aborted') answer about f means. */
  private copyError(reply: CopyReply, f: ManifestFile, dest: string): Error {
    if (reply.status !== 'failed') return new Error(`the restore copier thread gave up ${dest} unasked`);
    if (reply.failure === 'missing') return this.reader.missingError(f);
    if (reply.failure === 'damaged') return this.reader.damagedError(f, reply.detail);
    if (reply.failure === 'undecryptable') return this.reader.undecryptableError(f, reply.detail);
    return storageError(reply.action ?? 'restore', reply.path ?? dest, Object.assign(new Error(reply.detail), reply.code ? { code: reply.code } : {}));
  }

  /** A large file to cut across the copiers (file-pieces.ts), created empty here; null: restore it whole. */
  private async cutFile(f: ManifestFile, dest: string, delta: boolean): Promise<CutFile | null> {
    if (delta || f.size < PIECE_MIN_FILE) return null;
    const src = await this.reader.threadSource(f);
    const pieces = src ? piecesOf(f, src, delta) : null;
    if (src === null || pieces === null) return null;
    await (await createFresh(dest, f.mode)).close();
    return { f, dest, src, pieces, crcs: [], left: pieces.length, fallback: false };
  }

  /** Piece i of a cut file on a copier; the last one in checks the file whole and finishes it. */
  private async copyPiece(thread: CopyThread, cut: CutFile, i: number, sync: boolean, result: FileRestoreResult, onFile: FileRestoreOptions['onFile']): Promise<void> {
    const { f, dest, src } = cut;
    const p = cut.pieces[i]!;
    const reply = await thread.run({
      id: 0, source: src.file, offset: p.offset, length: p.storedLength, compression: src.compression, decrypt: null,
      dest, mode: f.mode, mtime: this.mtimeOf(f), size: f.size, digest: digestOf(f)!, crc32c: f.crc32c ?? null, delta: false, sync,
      piece: { at: p.at, length: p.length },
    });
    if (reply.status === 'written') cut.crcs[i] = reply.crc32c!;
    else if (reply.status === 'fallback') {
      cut.fallback = true;
      result.handedBack[reply.why] = (result.handedBack[reply.why] ?? 0) + 1;
    } else {
      await removeIfPresent(dest);
      throw this.copyError(reply, f, dest);
    }
    if (--cut.left > 0) return;
    if (cut.fallback) {
      result.streamed++;
      await this.copyHere(f, dest, false, sync);
    } else await this.finishCut(cut, sync);
    result.written++;
    result.bytesWritten += f.size;
    onFile?.(f.path, f.size, true);
  }

  /** Every piece of a cut file is in: its CRC-32C checked, its mode and time set, synced when asked. */
  private async finishCut(cut: CutFile, sync: boolean): Promise<void> {
    const { f, dest } = cut;
    const crc = crc32cText(combinedCrc(cut.pieces, cut.crcs));
    if (crc !== f.crc32c) {
      await removeIfPresent(dest);
      throw this.reader.damagedError(f, `CRC-32C ${crc} instead of ${f.crc32c}`);
    }
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(dest, constants.O_WRONLY | constants.O_NOFOLLOW);
    } catch (e) {
      throw storageError('open', dest, e);
    }
    try {
      await fh.chmod(f.mode & STREAM_MODE_BITS);
      const mtime = this.mtimeOf(f);
      await fh.utimes(mtime, mtime);
      if (sync) await fh.sync();
    } catch (e) {
      throw storageError('write', dest, e);
    } finally {
      await fh.close();
    }
  }

  /** On this thread, through the storage's streams. */
  private async copyHere(f: ManifestFile, dest: string, delta: boolean, sync: boolean): Promise<'written' | 'unchanged'> {
    if (delta && (await sameContent(dest, f))) {
      this.reader.release(f);
      return 'unchanged';
    }
    await this.writeFile(f, dest, sync);
    return 'written';
  }

  /**
   * pg_control, last: the caller has synced everything else. Written whole under another name, given
   * to `owner`, synced, then renamed into place: a pg_control that exists is a whole one (a restore
   * killed while writing it left an empty one, which a rerun took for the end of a finished restore).
   * Its size, for the count of what was written.
   */
  async restoreControl(owner: { uid: number; gid: number } | null, sync: boolean): Promise<number> {
    const f = this.reader.manifest.files.find((x) => x.path === PG_CONTROL);
    if (!f) throw storageError('restore', PG_CONTROL, new Error('the backup set has no global/pg_control'));
    const dest = this.destination(f.path);
    const tmp = `${dest}.pgpitr-tmp`;
    await this.writeFile(f, tmp, false);
    try {
      if (owner) await fsp.lchown(tmp, owner.uid, owner.gid);
      if (sync) await fsyncPath(tmp);
      await fsp.rename(tmp, dest);
    } catch (e) {
      throw storageError('write', dest, e);
    }
    return f.size;
  }

  /**
   * A file of zeros of f's size, with no blocks allocated (a hole), whatever was there (delta):
   * its content is not f's, so it gets the restore's time, not f's (a later backup must copy it).
   */
  private async writeZeroed(f: ManifestFile, dest: string, sync: boolean): Promise<void> {
    const fh = await createFresh(dest, f.mode);
    try {
      await fh.truncate(f.size);
      await fh.chmod(f.mode & STREAM_MODE_BITS);
      if (sync) await fh.sync();
    } catch (e) {
      throw storageError('write', dest, e);
    } finally {
      await fh.close();
    }
  }

  private async writeFile(f: ManifestFile, dest: string, sync = false): Promise<void> {
    const fh = await createFresh(dest, f.mode);
    try {
      for await (const chunk of await this.reader.read(f)) {
        const b = chunk as Buffer;
        for (let off = 0; off < b.length; ) off += (await fh.write(b, off, b.length - off)).bytesWritten;
      }
      await fh.chmod(f.mode & STREAM_MODE_BITS);
      const mtime = this.mtimeOf(f);
      await fh.utimes(mtime, mtime);
      if (sync) await fh.sync();
    } catch (e) {
      if (e instanceof PgpitrError) throw e;
      throw storageError('write', dest, e);
    } finally {
      await fh.close();
    }
  }
}
