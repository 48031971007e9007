// Archived WAL files read one after another, as restore reads them to find its
// target (a restore point, the last transaction): into buffers reused from one
// file to the next, the next two fetched and decoded (on the thread pool) while
// this one is read. Decoding into a fresh 16 MiB buffer per segment left the collector
// hundreds of megabytes to find, and the process's memory grew with the
// number of segments read (measured: 250 MB after 51 segments); this way it
// stays flat. The decoded buffers are shared memory, hashed (SHA-256, checked
// against the archive's) by a thread of their own while the caller walks the
// file before: the main thread then only walks.

import { decodeStoredWal, archivedFilePath, disappearedWhileRead } from './archive-store.js';
import { sha256 } from './wal-digest.js';
import type { ArchivedFile } from './archive-store.js';
import type { Repository } from './repository.js';
import { Sha256Thread, sharedBuffer } from '../storage/sha256-thread.js';

/** Files fetched and decoded (libzstd on the thread pool) ahead of the one read... */
const AHEAD = 2;
/** ...or one, for segments larger than this (up to 1 GiB each): memory before speed. */
const LARGE = 64 << 20;

interface Loading {
  file: ArchivedFile;
  slot: number;
  content: Promise<Buffer>;
}

export class ArchivedFileReader {
  /** Buffer pairs (stored bytes, content): the file handed to the caller's, and those of the files loading. */
  private bodies: Buffer[] = Array.from({ length: AHEAD + 1 }, () => Buffer.alloc(0));
  private contents: Buffer[] = Array.from({ length: AHEAD + 1 }, () => Buffer.alloc(0));
  private ahead = AHEAD;
  /** The slot of the content last handed to the caller: not written again before the next read. */
  private handed = -1;
  private loading: Loading[] = [];
  /** A read is under way: the buffers are handed out one call at a time. */
  private reading = false;
  /** Hashes what is decoded into the shared buffers; started with the first load. */
  private hasher: Sha256Thread | null = null;

  constructor(private readonly repo: Repository, private readonly stanza: string) {}

  /**
   * `file`'s content, decompressed and verified: valid until the next read. `upcoming`: the files
   * likely read next, in order, fetched and decoded meanwhile.
   */
  async read(file: ArchivedFile, upcoming: readonly ArchivedFile[] = []): Promise<Buffer> {
    if (this.reading) throw new Error('internal error: ArchivedFileReader.read called again before the last call returned');
    this.reading = true;
    try {
      return await this.readNext(file, upcoming);
    } finally {
      this.reading = false;
    }
  }

  private async readNext(file: ArchivedFile, upcoming: readonly ArchivedFile[]): Promise<Buffer> {
    // The caller is done with what it was handed last.
    this.handed = -1;
    if (this.loading[0]?.file !== file) {
      // Not what was fetched ahead: let that finish (its buffers are reused) and start again.
      await Promise.allSettled(this.loading.map((l) => l.content));
      this.loading = [];
      this.loading.push(this.load(file));
    }
    const next = this.loading.shift()!;
    const data = await next.content;
    this.handed = next.slot;
    if (data.length > LARGE) this.ahead = 1;
    for (const f of upcoming) {
      if (this.loading.length >= this.ahead) break;
      if (!this.loading.some((l) => l.file === f)) this.loading.push(this.load(f));
    }
    return data;
  }

  /** Lets the buffers go (restore copies files next): a later read allocates them again. */
  async release(): Promise<void> {
    if (this.reading) throw new Error('internal error: ArchivedFileReader.release called during a read');
    await Promise.allSettled(this.loading.map((l) => l.content));
    this.loading = [];
    this.bodies = this.bodies.map(() => Buffer.alloc(0));
    this.contents = this.contents.map(() => Buffer.alloc(0));
    const hasher = this.hasher;
    this.hasher = null;
    await hasher?.stop();
  }

  /** Fetches and decodes `file` into a pair of buffers neither handed out nor loading (grown as needed). */
  private load(file: ArchivedFile): Loading {
    const slot = [...this.contents.keys()].find((i) => i !== this.handed && !this.loading.some((l) => l.slot === i))!;
    const path = archivedFilePath(this.stanza, file);
    const content = (async () => {
      const stored = await this.fetch(path, file, slot);
      const spare = (size: number): Buffer => (this.contents[slot]!.length >= size ? this.contents[slot]! : (this.contents[slot] = sharedBuffer(size)));
      return decodeStoredWal(this.repo, path, file.extension, file.sha256, stored, spare, (data) => this.digestElsewhere(data));
    })();
    content.catch(() => undefined); // awaited by read(); not unhandled when the reader is dropped first
    return { file, slot, content };
  }

  /**
   * The SHA-256 of a shared buffer, by the thread (started at the first one); null for another
   * buffer (hashed by the caller). A thread that cannot start or dies leaves it to the main thread.
   */
  private digestElsewhere(data: Buffer): Promise<string> | null {
    if (!Sha256Thread.canHash(data)) return null;
    try {
      this.hasher ??= new Sha256Thread();
    } catch {
      return null;
    }
    return this.hasher.digest(data).catch(() => sha256(data));
  }

  /** The stored bytes, gathered into body buffer `slot`. */
  private async fetch(path: string, file: ArchivedFile, slot: number): Promise<Buffer> {
    const stream = await this.repo.storage.read(path);
    if (stream === null) throw disappearedWhileRead(this.repo, path);
    let length = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let into = this.bodies[slot]!;
      if (length + chunk.length > into.length) {
        const bigger = Buffer.allocUnsafeSlow(Math.max(2 * into.length, length + chunk.length, file.size, 1 << 20));
        into.copy(bigger, 0, 0, length);
        this.bodies[slot] = into = bigger;
      }
      chunk.copy(into, length);
      length += chunk.length;
    }
    return this.bodies[slot]!.subarray(0, length);
  }
}
