// One tablespace's tar stream of a parallel backup, made from entries and
// handed to the sink as BASE_BACKUP's tar data would be. Files are read by
// several readers at once but their members follow each other: each takes a
// turn, in the order the turns were asked for, and holds it from its header to
// its padding.

import type { BaseBackupEvents } from '../../protocol/base-backup-stream.js';
import { encodeHeader, paddingFor, TAR_END } from '../../storage/tar/tar-header.js';
import type { TarEntry } from '../../storage/tar/tar-header.js';

export class TarWriter {
  private last: Promise<void> = Promise.resolve();

  /**
   * @param releases the sink is done with a chunk once its tarData() settled (it keeps no
   * reference: BackupSink.lendTarData), so readers may lend the chunks they hand back.
   */
  constructor(
    private readonly ev: BaseBackupEvents,
    readonly releases = false,
  ) {}

  turn(): { wait: Promise<void>; done(): void } {
    const wait = this.last;
    let done!: () => void;
    this.last = new Promise<void>((r) => (done = r));
    return { wait, done };
  }

  async entry(e: TarEntry): Promise<void> {
    await this.ev.tarData(encodeHeader(e));
  }

  async data(b: Buffer): Promise<void> {
    await this.ev.tarData(b);
  }

  async pad(size: number): Promise<void> {
    const n = paddingFor(size);
    if (n > 0) await this.ev.tarData(Buffer.alloc(n));
  }

  /** A whole file held in memory (backup_label, tablespace_map). */
  async file(name: string, bytes: Buffer, mode: number, mtime: number): Promise<void> {
    await this.entry({ name, type: 'file', size: bytes.length, mode, mtime, linkname: '' });
    await this.data(bytes);
    await this.pad(bytes.length);
  }

  async end(): Promise<void> {
    await this.last;
    await this.ev.tarData(TAR_END);
  }
}
