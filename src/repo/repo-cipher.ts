// The keys of an encrypted repository. A random repository key, wrapped
// (AES-256-GCM) by a key derived from the passphrase with scrypt, is kept in
// the repository marker, pgpitr-repo.json, and its copy, the files (with locks)
// stored as they are: no plaintext key is ever written. Changing the passphrase re-wraps
// that key and re-encrypts nothing. The data key every object is encrypted
// with derives from the repository key; each object then has its own key
// (object-format.ts). Which paths stay plaintext is decided here.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { PgpitrError, usageError } from '../common/errors.js';
import type { DataKey } from '../storage/cipher/object-format.js';
import type { KeyResolver } from '../storage/cipher/cipher-storage.js';
import { isRepositoryLockPath, REPO_MARKER, REPO_MARKER_COPY } from './layout.js';

/** What the marker records of the encryption (no secret: the key is wrapped). */
export interface CipherBlock {
  type: 'aes-256-gcm';
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  /** Id of the repository key (hex), which every object's header names. */
  key_id: string;
  /** The repository key, wrapped: nonce (12) + ciphertext (32) + tag (16), base64. */
  wrapped_key: string;
}

const KDF = { N: 2 ** 15, r: 8, p: 1 };

function deriveKek(pass: string, kdf: CipherBlock['kdf']): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(pass.normalize('NFC'), Buffer.from(kdf.salt, 'base64'), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + 16 * 1024 * 1024 }, (e, k) => (e ? reject(e) : resolve(k))),
  );
}

function wrapAad(keyId: string): Buffer {
  return Buffer.from(`pgpitr-repository-key-v1\0${keyId}`);
}

/** A new repository key and the marker's block that keeps it, wrapped under the passphrase. */
export async function createCipherBlock(pass: string): Promise<{ block: CipherBlock; key: Buffer }> {
  const key = randomBytes(32);
  const keyId = randomBytes(16).toString('hex');
  const kdf = { name: 'scrypt' as const, ...KDF, salt: randomBytes(16).toString('base64') };
  const kek = await deriveKek(pass, kdf);
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(wrapAad(keyId));
  const sealed = Buffer.concat([nonce, c.update(key), c.final(), c.getAuthTag()]);
  return { block: { type: 'aes-256-gcm', kdf, key_id: keyId, wrapped_key: sealed.toString('base64') }, key };
}

/** The repository key, unwrapped with the passphrase; a wrong passphrase is one clear error. */
export async function openCipherBlock(block: CipherBlock, pass: string, what: { label: string; location: string; file?: string }): Promise<Buffer> {
  const file = what.file ?? 'pgpitr-repo.json';
  if (block.type !== 'aes-256-gcm' || block.kdf?.name !== 'scrypt') {
    throw new PgpitrError('ERR_STORAGE', `repository ${what.location} is encrypted with ${block.type}/${block.kdf?.name}, which this pgpitr does not read`, { hint: 'use the pgpitr version that created it' });
  }
  // Settings a pgpitr would write: anything else is a damaged (or tampered) marker, named as such,
  // never handed to scrypt (a huge N or r would have it allocate what it asks).
  const k = block.kdf;
  // At most 4x the memory (128 MiB) and 16x the work of what pgpitr writes (N=2^15, r=8, p=1): a marker altered
  // to ask for gigabytes is refused, and the other file's key tried.
  const sane = Number.isInteger(k.N) && k.N >= 2 ** 14 && k.N <= 2 ** 17 && (k.N & (k.N - 1)) === 0 && Number.isInteger(k.r) && k.r >= 1 && k.r <= 8 && Number.isInteger(k.p) && k.p >= 1 && k.p <= 4 && typeof k.salt === 'string' && Buffer.from(k.salt, 'base64').length >= 16;
  const sealed = Buffer.from(typeof block.wrapped_key === 'string' ? block.wrapped_key : '', 'base64');
  if (!sane || sealed.length !== 60 || typeof block.key_id !== 'string' || !/^[0-9a-f]{32}$/.test(block.key_id)) {
    throw new PgpitrError('ERR_STORAGE', `the encryption settings in repository marker ${what.location}/${file} are damaged (key derivation N=${String(k.N)} r=${String(k.r)} p=${String(k.p)}, wrapped key ${sealed.length} bytes, key id ${String(block.key_id)})`, {
      hint: `put back ${file} from a copy of the repository: it holds the wrapped key`,
    });
  }
  const kek = await deriveKek(pass, block.kdf);
  try {
    const d = createDecipheriv('aes-256-gcm', kek, sealed.subarray(0, 12));
    d.setAAD(wrapAad(block.key_id));
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  } catch {
    // A changed byte of the wrapped key fails the same check: said, since no passphrase then opens it.
    throw usageError(
      `${what.label}-cipher-pass does not open repository ${what.location}: wrong passphrase, or the wrapped key in its marker ${file} was changed (both fail the same check)${what.file && what.file !== 'pgpitr-repo.json' ? '; pgpitr-repo.json itself could not be used' : ''}`,
      `give the passphrase the repository was created with (${what.label}-cipher-pass in the configuration file, or the environment); if it is that one, put back pgpitr-repo.json from a copy kept away from the repository (docs/encryption.md)`,
    );
  }
}

/**
 * The repository key from the first of `blocks` (the marker's, then its copy's) the passphrase
 * opens; none opening is the first one's error. Blocks alike are tried once.
 */
export async function openCipherBlocks(blocks: CipherBlock[], pass: string, what: { label: string; location: string; file?: string }): Promise<{ block: CipherBlock; key: Buffer }> {
  const distinct = blocks.filter((b, i) => blocks.findIndex((o) => isDeepStrictEqual(o, b)) === i);
  let first: unknown = null;
  for (const block of distinct) {
    try {
      return { block, key: await openCipherBlock(block, pass, what) };
    } catch (e) {
      first ??= e;
    }
  }
  throw first;
}

/** The data key of a repository key: what objects are encrypted with, and the id they carry. */
export function dataKeyOf(repositoryKey: Buffer, keyId: string): DataKey {
  return { id: Buffer.from(keyId, 'hex'), key: Buffer.from(hkdfSync('sha256', repositoryKey, Buffer.alloc(0), 'pgpitr-data-v1', 32)) };
}

/** Every object is encrypted but the repository marker and its copy (they keep the wrapped key) and locks (a pid and a host). */
export function repositoryKeys(dataKey: DataKey): KeyResolver {
  return { keyFor: (path) => (path === REPO_MARKER || path === REPO_MARKER_COPY || isRepositoryLockPath(path) ? null : dataKey) };
}
