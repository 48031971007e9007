// The WAL files the asynchronous pusher is preparing or storing: each read,
// checked, hashed and compressed once for the repositories that take it at the
// same turn, released when the last of them is done with it. Preparing is the
// CPU's work, storing mostly waits on a repository (more stores than CPUs on
// object storage, repo-queue.ts): process-max files are prepared at once, in
// the order they were taken, so that the oldest is ready first instead of all
// of them late, each with a share of the CPUs.

import { join } from 'node:path';
import { prepareWalFile } from '../wal/archive-wal-file.js';
import type { PreparedWalFile } from '../wal/archive-wal-file.js';
import type { PushOptions } from '../repo/archive-store.js';
import type { StanzaInfo } from '../repo/stanza.js';
import { Slots } from '../common/slots.js';

export class PreparedFiles {
  private readonly files = new Map<string, { file: Promise<PreparedWalFile>; users: number }>();
  private readonly cpu: Slots;

  constructor(
    private readonly stanza: StanzaInfo,
    private readonly pgWal: string,
    private readonly push: PushOptions,
    /** Files prepared at once. */
    processMax: number,
  ) {
    this.cpu = new Slots(processMax);
  }

  /** `source`: where the file is read (default: pg_wal/name); `name` is then a key for it. */
  take(name: string, users: number, source = join(this.pgWal, name)): Promise<PreparedWalFile> {
    let entry = this.files.get(name);
    if (!entry) {
      const file = this.prepare(source);
      file.catch(() => {}); // each store reports it
      entry = { file, users: 0 };
      this.files.set(name, entry);
    }
    entry.users += users;
    return entry.file;
  }

  async give(name: string): Promise<void> {
    const entry = this.files.get(name)!;
    if (--entry.users > 0) return;
    this.files.delete(name);
    await entry.file.then((f) => f.release(), () => {});
  }

  /** Ready once hashed (a store may look the file up meanwhile); its CPU slot is held until compressed too. */
  private async prepare(source: string): Promise<PreparedWalFile> {
    await this.cpu.acquire();
    let file: PreparedWalFile;
    try {
      file = await prepareWalFile(this.stanza, source, this.push);
    } catch (e) {
      this.cpu.release();
      throw e;
    }
    void file.prepared.done().then(() => this.cpu.release());
    return file;
  }
}
