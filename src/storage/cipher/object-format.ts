// The format of an encrypted object (PGPE v1): a 64-byte plaintext header,
// then the content in chunks of CHUNK_SIZE bytes, each encrypted with
// AES-256-GCM under a key of its own object and followed by its 16-byte tag.
//
//   header   0  6  magic "PGPENC"
//            6  1  version 1
//            7  1  cipher 1 (AES-256-GCM)
//            8  4  chunk size, u32 BE
//           12 16  key id: which data key (the repository's, a backup's...)
//           28 16  salt, random per object
//           44 16  path tag: HMAC-SHA256(data key, "pgpitr-path\0" + path), first 16 bytes
//           60  4  reserved, zero
//   chunk i  ciphertext (CHUNK_SIZE bytes; the last one shorter, possibly empty) + tag
//
//   object key = HKDF-SHA256(data key, salt, "pgpitr-object-v1\0" + path)
//   nonce i    = u64 BE i + u32 0 (the key is unique per object)
//   AAD i      = header + u64 BE i + u8 final (1 on the last chunk only)
//
// So a flipped byte fails a chunk's tag, a file cut at a chunk boundary lacks
// its final chunk, bytes after it are trailing data, and an object copied over
// another's path carries the other path's tag: each is told apart and named.

import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';

export const MAGIC = Buffer.from('PGPENC', 'latin1');
export const HEADER_SIZE = 64;
export const TAG_SIZE = 16;
export const CHUNK_SIZE = 256 * 1024;
export const KEY_ID_SIZE = 16;

/** A data key and the id its objects carry. */
export interface DataKey {
  id: Buffer;
  key: Buffer;
}

export interface ObjectHeader {
  bytes: Buffer;
  chunkSize: number;
  keyId: Buffer;
  salt: Buffer;
  pathTag: Buffer;
}

export function pathTag(key: Buffer, path: string): Buffer {
  return createHmac('sha256', key).update(`pgpitr-path\0${path}`).digest().subarray(0, 16);
}

/** HKDF's info is at most 1024 bytes (Node): a longer one names the path by its SHA-256 instead. */
const INFO_MAX = 1024;

export function objectKey(key: Buffer, salt: Buffer, path: string): Buffer {
  let info = Buffer.from(`pgpitr-object-v1\0${path}`);
  // Paths this long could not be encrypted before (hkdfSync refused them): no object written so changes.
  if (info.length > INFO_MAX) info = Buffer.from(`pgpitr-object-v1-sha256\0${createHash('sha256').update(path).digest('hex')}`);
  return Buffer.from(hkdfSync('sha256', key, salt, info, 32));
}

export function newHeader(dataKey: DataKey, path: string): ObjectHeader {
  const bytes = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(bytes, 0);
  bytes[6] = 1;
  bytes[7] = 1;
  bytes.writeUInt32BE(CHUNK_SIZE, 8);
  dataKey.id.copy(bytes, 12);
  const salt = randomBytes(16);
  salt.copy(bytes, 28);
  const tag = pathTag(dataKey.key, path);
  tag.copy(bytes, 44);
  return { bytes, chunkSize: CHUNK_SIZE, keyId: dataKey.id, salt, pathTag: tag };
}

/** The header's fields, or a reason it is not one (for the caller's error, which names the object). */
export function parseHeader(bytes: Buffer): ObjectHeader | string {
  if (bytes.length < HEADER_SIZE) return bytes.length === 0 ? 'it is empty, not an encrypted object' : `it is ${bytes.length} bytes long, shorter than an encrypted object's header`;
  if (!bytes.subarray(0, 6).equals(MAGIC)) return 'it is not encrypted (no pgpitr encryption header): a plaintext file was put in an encrypted repository';
  if (bytes[6] !== 1 || bytes[7] !== 1) return `its encryption format (version ${bytes[6]}, cipher ${bytes[7]}) is not one this pgpitr reads`;
  const chunkSize = bytes.readUInt32BE(8);
  if (chunkSize < 1024 || chunkSize > 64 * 1024 * 1024) return `its header gives an impossible chunk size (${chunkSize})`;
  const h = Buffer.from(bytes.subarray(0, HEADER_SIZE));
  return { bytes: h, chunkSize, keyId: h.subarray(12, 28), salt: h.subarray(28, 44), pathTag: h.subarray(44, 60) };
}

export function nonceFor(index: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(index), 0);
  return n;
}

export function aadFor(header: Buffer, index: number, final: boolean): Buffer {
  const a = Buffer.alloc(HEADER_SIZE + 9);
  header.copy(a, 0);
  a.writeBigUInt64BE(BigInt(index), HEADER_SIZE);
  a[HEADER_SIZE + 8] = final ? 1 : 0;
  return a;
}

/** Chunks of an object holding `plain` bytes (an empty object still has its one final chunk). */
export function chunkCount(plain: number, chunkSize = CHUNK_SIZE): number {
  return Math.max(1, Math.ceil(plain / chunkSize));
}

export function storedSize(plain: number, chunkSize = CHUNK_SIZE): number {
  return HEADER_SIZE + plain + TAG_SIZE * chunkCount(plain, chunkSize);
}

/** The plaintext size of a stored object of `stored` bytes; null when no valid object has that size. */
export function plainSize(stored: number, chunkSize = CHUNK_SIZE): number | null {
  const body = stored - HEADER_SIZE;
  if (body < TAG_SIZE) return null;
  const chunks = Math.ceil(body / (chunkSize + TAG_SIZE));
  const plain = body - TAG_SIZE * chunks;
  return storedSize(plain, chunkSize) === stored ? plain : null;
}
