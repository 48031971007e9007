// -F tar: one tar file per tablespace (base.tar, <oid>.tar, pg_wal.tar), compressed
// client-side when asked, written as-is when the server compressed it. With
// -R base.tar is rewritten in passing to carry the recovery settings;
// with `-D -` the single tar file goes to stdout with backup_manifest inside.

import { join } from 'node:path';
import { renameSync } from 'node:fs';
import type { Duplex, Writable } from 'node:stream';
import type { BackupSink, DirectTar } from '../sink.js';
import type { BaseBackupOptions } from '../options.js';
import type { TablespaceHeader } from '../../protocol/base-backup-stream.js';
import type { SegmentStore } from '../wal/segment-store.js';
import { TarSegmentStore } from '../wal/tar-segment-store.js';
import { TarRewriter } from './tar-rewriter.js';
import type { AppendedMember } from './tar-rewriter.js';
import { FileWritable } from '../../storage/file-writable.js';
import { StdoutWritable } from '../../storage/stdout-writable.js';
import { chain } from '../../storage/chain.js';
import type { Chain } from '../../storage/chain.js';
import { writeWithBackpressure, endWritable, waitDrain } from '../../storage/stream-util.js';
import { fsyncPathSync } from '../../storage/durable.js';
import { clientCompressStage, decompressStage, extensionOf, prepareClientCompression, serverCompressionOf } from '../tar-stages.js';
import { STANDBY_SIGNAL, AUTO_CONF, appendToAutoConf, recoverySettingsText } from '../../postgres/recovery-config.js';
import { PgpitrError, storageError } from '../../common/errors.js';
import { syncEncoder } from '../../storage/compress/sync-encoder.js';
import { EncodingFileWritable } from '../../storage/encoding-file-writable.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';

export class TarSink implements BackupSink {
  private current: Chain | null = null;
  /** The current tar file's writer when nothing stands between it and tarData() (see directTar). */
  private currentFile: FileWritable | null = null;
  private baseChain: Chain | null = null;
  private appendToBase: AppendedMember[] | null = null;
  private manifest: FileWritable | null = null;
  private manifestParts: Buffer[] | null = null;
  /** lendTarData() was asked for and granted. */
  private lending = false;
  /** precompressTar() was asked for and granted: tar data comes compressed. */
  private precompressed = false;
  readonly files: string[] = [];

  constructor(
    private readonly dir: string | null, // null = stdout
    private readonly opts: BaseBackupOptions,
    private readonly fileMode = 0o600,
  ) {}

  prepare(): void {
    if (this.opts.compression?.location === 'client') prepareClientCompression(this.opts.compression);
  }

  prepareTablespaces(list: TablespaceHeader[]): void {
    if (this.dir === null && list.length > 1) {
      throw new PgpitrError('ERR_USAGE', `can only write a single tablespace to stdout, the database has ${list.length}`, {
        hint: 'write the tar files to a directory with -D DIR instead of -D -',
      });
    }
  }

  /** Where a tar file goes; with `encoded`, compressed as it is written (see encoderHere). */
  private output(name: string, encoded = false): Writable {
    if (this.dir === null) return new StdoutWritable();
    const path = join(this.dir, name);
    this.files.push(path);
    if (encoded) {
      const c = this.opts.compression!;
      return new EncodingFileWritable(path, !this.opts.noSync, this.fileMode, syncEncoder(c.algorithm, c.level)!);
    }
    return new FileWritable(path, !this.opts.noSync, this.fileMode, this.lending);
  }

  /**
   * Tar files whose bytes come compressed: only to files (not stdout, whose single tar file may
   * carry the manifest), without -R's rewriting, and where the same frames can be made by a
   * synchronous encoder (not zstd's long mode).
   */
  precompressTar(): { compression: CompressionAlgorithm; level: number | undefined } | null {
    const c = this.opts.compression;
    if (this.dir === null || c?.location !== 'client' || this.opts.writeRecoveryConf || c.long) return null;
    if (syncEncoder(c.algorithm, c.level) === null) return null;
    this.precompressed = true;
    return { compression: c.algorithm, level: c.level };
  }

  /**
   * Tar files straight to files (no stage that may hold chunks: not compressed here, or
   * precompressTar() was granted first): their writers copy what they gather.
   */
  lendTarData(): boolean {
    this.lending = this.dir !== null && (this.opts.compression?.location !== 'client' || this.precompressed || this.encoderHere()) && !this.opts.writeRecoveryConf;
    return this.lending;
  }

  /**
   * Client-side compression done as the tar files are written (storage/encoding-file-writable.ts)
   * rather than by a stream stage: lz4's fast levels, to files, without -R's rewriting, when the
   * readers do not compress already. The stage compresses 256 KiB blocks behind a Transform that
   * cannot lend the socket's reads; this writer copies each chunk into small blocks at once.
   */
  private encoderHere(): boolean {
    return this.mayEncodeHere() && !this.precompressed;
  }

  private mayEncodeHere(): boolean {
    const c = this.opts.compression;
    if (this.dir === null || c?.location !== 'client' || c.algorithm !== 'lz4' || this.opts.writeRecoveryConf) return false;
    return syncEncoder(c.algorithm, c.level) !== null;
  }

  tarBegin(name: string, ts: TablespaceHeader | null): void {
    const isBase = ts === null || ts.oid === null;
    const serverAlgo = serverCompressionOf(name);
    const client = this.opts.compression?.location === 'client' ? this.opts.compression : null;
    const injectManifest = this.dir === null && this.opts.manifest;
    const rewrite = isBase && (this.opts.writeRecoveryConf || injectManifest);
    const stages: Duplex[] = [];
    let fileName = name;
    if (rewrite) {
      const append: AppendedMember[] = [];
      const edit = new Map<string, (old: Buffer) => Buffer>();
      if (this.opts.writeRecoveryConf) {
        const text = recoverySettingsText(this.opts.connection, this.opts.slot, this.opts.recoveryConfDbname);
        edit.set(AUTO_CONF, (old) => appendToAutoConf(old, text));
        append.push({ name: STANDBY_SIGNAL, content: Buffer.alloc(0) });
      }
      if (serverAlgo) stages.push(decompressStage(serverAlgo));
      // What it adds (standby.signal, the manifest of a tar to stdout) takes the mode pg_basebackup gives it.
      stages.push(new TarRewriter({ tarName: name, edit, append, mode: this.fileMode }));
      if (serverAlgo) stages.push(clientCompressStage({ location: 'client', algorithm: serverAlgo }));
      if (injectManifest) this.appendToBase = append;
    }
    const encoded = client !== null && !rewrite && this.encoderHere();
    if (client) {
      if (!this.precompressed && !encoded) stages.push(clientCompressStage(client));
      fileName = name + extensionOf(client.algorithm);
    }
    const out = this.output(fileName, encoded);
    // Written as received, uncompressed, to a file: readers may write members into it (directTar).
    this.currentFile = stages.length === 0 && !client && !serverAlgo && out instanceof FileWritable ? out : null;
    this.current = chain(stages, out);
    if (isBase && injectManifest) this.baseChain = this.current;
  }

  tarData(chunk: Buffer): void | Promise<void> {
    return writeWithBackpressure(this.current!.head, chunk);
  }

  directTar(): DirectTar | null {
    const file = this.currentFile;
    if (file === null) return null;
    return {
      path: file.path,
      position: async () => {
        if (file.writableLength > 0) await waitDrain(file);
        return file.flushed();
      },
      continueAt: (position: number) => file.continueAt(position),
    };
  }

  async tarEnd(): Promise<void> {
    const c = this.current!;
    this.current = null;
    this.currentFile = null;
    if (c === this.baseChain) return; // ended after the manifest is appended
    c.head.end();
    await c.done;
  }

  manifestBegin(): void {
    if (this.dir === null) this.manifestParts = [];
    else this.manifest = new FileWritable(join(this.dir, 'backup_manifest.tmp'), !this.opts.noSync, this.fileMode);
  }

  manifestData(chunk: Buffer): void | Promise<void> {
    if (this.manifestParts) {
      this.manifestParts.push(Buffer.from(chunk));
      return;
    }
    return writeWithBackpressure(this.manifest!, chunk);
  }

  async manifestEnd(): Promise<void> {
    if (this.manifestParts && this.appendToBase && this.baseChain) {
      this.appendToBase.push({ name: 'backup_manifest', content: Buffer.concat(this.manifestParts) });
      const c = this.baseChain;
      this.baseChain = null;
      c.head.end();
      await c.done;
      return;
    }
    await endWritable(this.manifest!);
  }

  walStore(segmentSize: number): SegmentStore {
    // As pg_basebackup (15-18, walmethods.c): streamed WAL's tar is compressed with gzip only; with
    // client lz4 or zstd it is a plain pg_wal.tar, which scripts made for its output look for.
    const client = this.opts.compression?.location === 'client' && this.opts.compression.algorithm === 'gzip' ? this.opts.compression : null;
    const stages: Duplex[] = client ? [clientCompressStage(client)] : [];
    const name = 'pg_wal.tar' + (client ? extensionOf(client.algorithm) : '');
    const c = chain(stages, this.output(name));
    return new TarSegmentStore(c.head, segmentSize, c.done);
  }

  async finish(): Promise<void> {
    if (this.baseChain) {
      // No manifest came (--no-manifest): close the base archive now.
      const c = this.baseChain;
      this.baseChain = null;
      c.head.end();
      await c.done;
    }
    if (this.dir === null) return;
    if (this.manifest) {
      const tmp = join(this.dir, 'backup_manifest.tmp');
      try {
        renameSync(tmp, join(this.dir, 'backup_manifest'));
      } catch (e) {
        throw storageError('rename into place', tmp, e);
      }
    }
    if (!this.opts.noSync) fsyncPathSync(this.dir);
  }

  abort(): void {
    this.current?.destroy();
    this.baseChain?.destroy();
    this.manifest?.destroy();
  }
}
