// Encrypting and decrypting one object's bytes in the PGPE format
// (object-format.ts), as streams that hold at most one chunk: the stored
// bytes never need to fit in memory. Failures are returned as reasons; the
// caller names the object.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { HEADER_SIZE, TAG_SIZE, aadFor, newHeader, nonceFor, objectKey, parseHeader, pathTag } from './object-format.js';
import type { DataKey, ObjectHeader } from './object-format.js';
import { giveBack, takeBuffer } from '../../common/spare-buffers.js';

/** A failure to decrypt: `why` says what is wrong with the object, for an error that names it. */
export class CipherFailure extends Error {
  /** `otherKeyId`: the object's key id, when it was encrypted with another key than the one given. */
  constructor(
    readonly why: string,
    readonly otherKeyId?: string,
  ) {
    super(why);
  }
}

const OTHER_KEY = /^it was encrypted with another key \(key id ([0-9a-f]+),/;

/** The object's key id in a CipherFailure's words (a reader thread passes only those), when it names another key. */
export function otherKeyIdOf(why: string): string | undefined {
  return OTHER_KEY.exec(why)?.[1];
}

/** The encrypted form of `source` stored at `path` under `dataKey`: header, then the chunks. */
export async function* encryptObject(source: AsyncIterable<Buffer>, dataKey: DataKey, path: string): AsyncGenerator<Buffer> {
  const header = newHeader(dataKey, path);
  const key = objectKey(dataKey.key, header.salt, path);
  const size = header.chunkSize;
  let index = 0;
  const seal = (plain: Buffer, final: boolean): Buffer[] => {
    const c = createCipheriv('aes-256-gcm', key, nonceFor(index));
    c.setAAD(aadFor(header.bytes, index, final));
    const body = c.update(plain);
    const end = c.final();
    index++;
    return end.length > 0 ? [body, end, c.getAuthTag()] : [body, c.getAuthTag()];
  };
  yield header.bytes;
  // A chunk is sealed once more bytes are known to follow it: the last one is marked final.
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at > size) {
      yield* seal(pending.subarray(at, at + size), false);
      at += size;
    }
    if (at > 0) pending = pending.subarray(at);
  }
  yield* seal(pending, true);
}

export interface DecryptOptions {
  /** The data key this object must have been written with. */
  dataKey: DataKey;
  path: string;
  /**
   * The stream starts at chunk `firstChunk` of the body, not at the header (a ranged read; the
   * header is then given). With `lastChunk`, it ends one byte past that chunk (or at the object's
   * end): that byte shows the chunk before it is not the final one. Null: to the object's end.
   */
  range?: { header: Buffer; firstChunk: number; lastChunk: number | null };
}

/** Checks a header against the key and the path it is read at. */
export function checkHeader(bytes: Buffer, dataKey: DataKey, path: string): ObjectHeader {
  const h = parseHeader(bytes);
  if (typeof h === 'string') throw new CipherFailure(h);
  if (!h.keyId.equals(dataKey.id)) {
    throw new CipherFailure(`it was encrypted with another key (key id ${h.keyId.toString('hex')}, this repository's is ${dataKey.id.toString('hex')}): it comes from another repository`, h.keyId.toString('hex'));
  }
  if (!h.pathTag.equals(pathTag(dataKey.key, path))) {
    throw new CipherFailure('it holds the object written as another file (swapped or renamed): its content does not belong at this path');
  }
  return h;
}

/**
 * Decrypts an encrypted object's bytes pushed in pieces of any size, synchronously: each chunk is
 * authenticated before its plaintext is handed to emit. For code that drives its own loop (a
 * restore copier thread); decryptObject() is the stream form. Failures throw CipherFailure.
 */
export class ChunkOpener {
  private header: ObjectHeader | null;
  private key: Buffer | null;
  private index: number;
  private stride: number;
  /** Stored bytes not yet decrypted (less than a chunk and its tag, between pushes), in one reused buffer. */
  private input = Buffer.allocUnsafeSlow(0);
  private length = 0;

  constructor(private readonly o: DecryptOptions) {
    this.header = o.range ? checkHeader(o.range.header, o.dataKey, o.path) : null;
    this.key = this.header ? objectKey(o.dataKey.key, this.header.salt, o.path) : null;
    this.index = o.range?.firstChunk ?? 0;
    this.stride = this.header ? this.header.chunkSize + TAG_SIZE : 0;
  }

  /** Feeds stored bytes (copied: the caller may reuse its buffer); plaintext goes to emit, chunk by chunk. */
  push(chunk: Buffer, emit: (plain: Buffer) => void): void {
    if (this.length + chunk.length > this.input.length) {
      const bigger = takeBuffer(Math.max(this.length + chunk.length, this.input.length * 2));
      this.input.copy(bigger, 0, 0, this.length);
      giveBack(this.input);
      this.input = bigger;
    }
    chunk.copy(this.input, this.length);
    this.length += chunk.length;
    const pending = this.input.subarray(0, this.length);
    let at = 0;
    if (this.header === null) {
      if (pending.length < HEADER_SIZE) return;
      this.header = checkHeader(Buffer.from(pending.subarray(0, HEADER_SIZE)), this.o.dataKey, this.o.path);
      this.key = objectKey(this.o.dataKey.key, this.header.salt, this.o.path);
      this.stride = this.header.chunkSize + TAG_SIZE;
      at = HEADER_SIZE;
    }
    // More than a chunk's bytes: the chunk is not the last.
    while (pending.length - at > this.stride) {
      const sealed = pending.subarray(at, at + this.stride);
      const plain = this.open(sealed, false);
      if (plain === null) {
        throw new CipherFailure(this.open(sealed, true) !== null ? `it has data after its final chunk (chunk ${this.index})` : `chunk ${this.index} fails authentication: the object is damaged or was altered`);
      }
      emit(plain);
      this.index++;
      at += this.stride;
    }
    this.input.copyWithin(0, at, this.length);
    this.length -= at;
  }

  /** The stored bytes are all in: decrypts the final chunk, or throws what is wrong with the end. */
  end(emit: (plain: Buffer) => void): void {
    const pending = this.input.subarray(0, this.length);
    if (this.header === null) throw new CipherFailure(parseHeader(pending) as string);
    // A bounded range that ends one byte into the chunk after the last it wanted: all decrypted. (One
    // short of that is an object cut there: truncated.)
    const last = this.o.range?.lastChunk ?? null;
    if (last !== null && pending.length > 0 && pending.length < TAG_SIZE && this.index > last) return this.release();
    if (pending.length < TAG_SIZE) throw new CipherFailure(`it is truncated: ${this.index} chunk(s) and no final chunk`);
    const plain = this.open(pending, true);
    if (plain === null) {
      if (pending.length === this.stride && this.open(pending, false) !== null) throw new CipherFailure(`it is truncated: ${this.index + 1} complete chunk(s) and no final chunk`);
      throw new CipherFailure(`chunk ${this.index} fails authentication: the object is damaged or was altered`);
    }
    emit(plain);
    this.release();
  }

  /** Done: the input buffer serves the next opener on this thread (what was emitted never points into it). */
  private release(): void {
    giveBack(this.input);
    this.input = Buffer.alloc(0);
    this.length = 0;
  }

  private open(sealed: Buffer, final: boolean): Buffer | null {
    const d = createDecipheriv('aes-256-gcm', this.key!, nonceFor(this.index));
    d.setAAD(aadFor(this.header!.bytes, this.index, final));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const body = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
    try {
      const end = d.final();
      return end.length > 0 ? Buffer.concat([body, end]) : body;
    } catch {
      return null;
    }
  }
}

/** The plaintext of an encrypted object's bytes, chunk by chunk, each authenticated before it is handed over. */
export async function* decryptObject(source: AsyncIterable<Buffer>, o: DecryptOptions): AsyncGenerator<Buffer> {
  const opener = new ChunkOpener(o);
  const out: Buffer[] = [];
  const emit = (plain: Buffer): void => void out.push(plain);
  for await (const chunk of source) {
    opener.push(chunk, emit);
    while (out.length > 0) yield out.shift()!;
  }
  opener.end(emit);
  while (out.length > 0) yield out.shift()!;
}
