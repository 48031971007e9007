// One tablespace's tar stream of a parallel backup, made from entries and
// handed to the sink as BASE_BACKUP's tar data would be. Files are read by
// several readers at once but their members follow each other: each takes a
// turn, in the order the turns were asked for, and holds it from its header to
// its padding.
//
// When the sink takes its tar data compressed (BackupSink.precompressTar), the
// readers compress the files' bytes into frames (storage/compress/sync-encoder.ts)
// and this writer compresses the rest — headers, padding, the generated files —
// into frames of its own, gathered between the readers' frames.

import type { BaseBackupEvents } from '../../protocol/base-backup-stream.js';
import { encodeHeader, paddingFor, TAR_END } from '../../storage/tar/tar-header.js';
import type { TarEntry } from '../../storage/tar/tar-header.js';
import { syncEncoder } from '../../storage/compress/sync-encoder.js';
import type { SyncEncoder } from '../../storage/compress/sync-encoder.js';
import type { CompressionAlgorithm } from '../../storage/compress/common.js';
import { PgpitrError } from '../../common/errors.js';

/** Bytes of headers and padding gathered into one frame at most. */
const GATHER = 256 * 1024;

export class TarWriter {
  private last: Promise<void> = Promise.resolve();
  /** With an encoder: bytes of our own not yet compressed. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /**
   * @param releases the sink is done with a chunk once its tarData() settled (it keeps no
   * reference: BackupSink.lendTarData), so readers may lend the chunks they hand back.
   * @param encoding set when the sink takes compressed tar data: readers are to hand back
   * frames of it, which data() takes.
   * @param readsCounted true while the readers' bytes are counted for progress apart (the pool's
   * count, once a tar file or a data directory is written by the readers themselves): a chunk
   * they hand back then adds nothing more to the progress tarData() reports.
   */
  constructor(
    private readonly ev: BaseBackupEvents,
    readonly releases = false,
    readonly encoding: { compression: CompressionAlgorithm; level: number | undefined } | null = null,
    private readonly readsCounted: () => boolean = () => false,
  ) {
    this.encoder = encoding ? syncEncoder(encoding.compression, encoding.level) : null;
    if (encoding && !this.encoder) throw new PgpitrError('ERR_INTERNAL', `no synchronous ${encoding.compression} compressor for the tar files`);
  }

  private readonly encoder: SyncEncoder | null;

  turn(): { wait: Promise<void>; done(): void } {
    const wait = this.last;
    let done!: () => void;
    this.last = new Promise<void>((r) => (done = r));
    return { wait, done };
  }

  async entry(e: TarEntry): Promise<void> {
    await this.own(encodeHeader(e));
  }

  /** A file's bytes as a reader handed them back: compressed frames of `read` bytes read when there is an encoder. */
  async data(b: Buffer, read: number): Promise<void> {
    if (this.encoder) await this.flush();
    await this.ev.tarData(b, this.readsCounted() ? 0 : read);
  }

  async pad(size: number): Promise<void> {
    const n = paddingFor(size);
    if (n > 0) await this.own(Buffer.alloc(n));
  }

  /** A whole file held in memory (backup_label, tablespace_map). */
  async file(name: string, bytes: Buffer, mode: number, mtime: number): Promise<void> {
    await this.entry({ name, type: 'file', size: bytes.length, mode, mtime, linkname: '' });
    await this.own(bytes);
    await this.pad(bytes.length);
  }

  async end(): Promise<void> {
    await this.last;
    await this.own(TAR_END);
    await this.flush();
  }

  /** Bytes made here (not by a reader): as they are, or gathered to be compressed. */
  async own(b: Buffer): Promise<void> {
    if (!this.encoder) {
      await this.ev.tarData(b);
      return;
    }
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= GATHER) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const src = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const out = Buffer.allocUnsafe(this.encoder!.bound(src.length));
    const n = this.encoder!.encode(src, out, 0);
    await this.ev.tarData(out.subarray(0, n), src.length);
  }
}
