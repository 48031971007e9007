// Sans-IO tar reader: feed() chunks, next() yields entry headers, data slices
// (views into the fed chunk, no copy), entry ends and the end of the archive.
// Headers that straddle chunks are assembled in a 512-byte buffer.

import { TAR_BLOCK, decodeHeader, isZeroBlock, paddingFor } from './tar-header.js';
import type { TarEntry } from './tar-header.js';
import { PgpitrError } from '../../common/errors.js';

export type TarEvent =
  | { kind: 'entry'; entry: TarEntry; header: Buffer }
  | { kind: 'data'; data: Buffer }
  | { kind: 'entry-end' }
  | { kind: 'end' };

export class TarParser {
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  private header = Buffer.alloc(TAR_BLOCK);
  private headerFilled = 0;
  private dataLeft = 0;
  private padLeft = 0;
  private inEntry = false;
  private ended = false;

  constructor(private readonly tarName: string) {}

  feed(chunk: Buffer): void {
    this.chunk = chunk;
    this.pos = 0;
  }

  get finished(): boolean {
    return this.ended;
  }

  next(): TarEvent | null {
    for (;;) {
      const available = this.chunk.length - this.pos;
      if (this.ended) {
        // Anything after the end-of-archive marker is zero padding; ignore it.
        this.pos = this.chunk.length;
        return null;
      }
      if (this.inEntry) {
        if (this.dataLeft > 0) {
          if (available === 0) return null;
          const n = Math.min(available, this.dataLeft);
          const data = this.chunk.subarray(this.pos, this.pos + n);
          this.pos += n;
          this.dataLeft -= n;
          return { kind: 'data', data };
        }
        if (this.padLeft > 0) {
          const n = Math.min(available, this.padLeft);
          this.pos += n;
          this.padLeft -= n;
          if (this.padLeft > 0) return null;
        }
        this.inEntry = false;
        return { kind: 'entry-end' };
      }
      if (available === 0) return null;
      const n = Math.min(available, TAR_BLOCK - this.headerFilled);
      this.chunk.copy(this.header, this.headerFilled, this.pos, this.pos + n);
      this.pos += n;
      this.headerFilled += n;
      if (this.headerFilled < TAR_BLOCK) return null;
      this.headerFilled = 0;
      if (isZeroBlock(this.header)) {
        this.ended = true;
        return { kind: 'end' };
      }
      let entry: TarEntry;
      try {
        entry = decodeHeader(this.header);
      } catch (e) {
        if (e instanceof PgpitrError) throw e; // a name it refuses (not UTF-8): said as it is
        throw new PgpitrError('ERR_PROTOCOL', `corrupt tar stream in tar file "${this.tarName}": ${(e as Error).message}`);
      }
      this.inEntry = true;
      this.dataLeft = entry.type === 'file' ? entry.size : 0;
      this.padLeft = paddingFor(this.dataLeft);
      return { kind: 'entry', entry, header: Buffer.from(this.header) };
    }
  }
}
