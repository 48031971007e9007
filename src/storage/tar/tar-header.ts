// ustar headers as PostgreSQL writes them (src/port/tar.c): 512-byte blocks,
// octal numbers, base-256 sizes for members of 8 GiB and more, names up to 99
// bytes plus the ustar prefix field.

import { PgpitrError } from '../../common/errors.js';

export const TAR_BLOCK = 512;

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  mtime: number; // seconds since the epoch
  linkname: string;
}

const enum Off {
  Name = 0,
  Mode = 100,
  Uid = 108,
  Gid = 116,
  Size = 124,
  Mtime = 136,
  Checksum = 148,
  Type = 156,
  Linkname = 157,
  Magic = 257,
  Version = 263,
  Uname = 265,
  Gname = 297,
  Prefix = 345,
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < TAR_BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

export function paddingFor(size: number): number {
  const rem = size % TAR_BLOCK;
  return rem === 0 ? 0 : TAR_BLOCK - rem;
}

function readString(block: Buffer, start: number, len: number): string {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

function readNumber(block: Buffer, start: number, len: number): number {
  if ((block[start]! & 0x80) !== 0) {
    // base-256 (GNU/star), used for sizes ≥ 8 GiB
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + block[i]!;
    return v;
  }
  const text = readString(block, start, len).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

export function decodeHeader(block: Buffer): TarEntry {
  const stored = readNumber(block, Off.Checksum, 8);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= Off.Checksum && i < Off.Checksum + 8 ? 0x20 : block[i]!;
  if (sum !== stored) throw new Error(`tar header checksum mismatch (stored ${stored}, computed ${sum})`);
  let name = readString(block, Off.Name, 100);
  if (block.toString('latin1', Off.Magic, Off.Magic + 5) === 'ustar') {
    const prefix = readString(block, Off.Prefix, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  // Read as UTF-8, a byte of another encoding becomes U+FFFD: the file would be written under another
  // name (black-box run X: a Latin-1 name in PGDATA came back renamed). Refused, naming it.
  if (name.includes('\uFFFD')) {
    throw new PgpitrError('ERR_CHECK', `"${name}": a file name in the backup that is not valid UTF-8 (the bytes shown as \uFFFD); pgpitr would write it under another name`, {
      hint: 'rename it in UTF-8 in the data directory (or remove it if it is not the cluster\'s), then take the backup again',
    });
  }
  const flag = String.fromCharCode(block[Off.Type]!);
  const type: TarEntryType =
    flag === '0' || flag === '\0' ? 'file' : flag === '5' ? 'directory' : flag === '2' ? 'symlink' : flag === '1' ? 'hardlink' : 'other';
  return {
    name,
    type,
    size: readNumber(block, Off.Size, 12),
    mode: readNumber(block, Off.Mode, 8),
    mtime: readNumber(block, Off.Mtime, 12),
    linkname: readString(block, Off.Linkname, 100),
  };
}

const TYPE_FLAG: Record<TarEntryType, string> = { file: '0', directory: '5', symlink: '2', hardlink: '1', other: '0' };

function writeOctal(block: Buffer, start: number, len: number, value: number): void {
  block.write(value.toString(8).padStart(len - 1, '0') + '\0', start, len, 'latin1');
}

export function encodeHeader(entry: TarEntry): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  let name = entry.name;
  if (entry.type === 'directory' && !name.endsWith('/')) name += '/';
  const nameBytes = Buffer.byteLength(name);
  if (nameBytes > 99) {
    // ustar: split at a slash so the tail fits the name field and the head the prefix field.
    let cut = -1;
    for (let i = name.indexOf('/'); i > 0; i = name.indexOf('/', i + 1)) {
      if (Buffer.byteLength(name.slice(0, i)) <= 155 && Buffer.byteLength(name.slice(i + 1)) <= 99) {
        cut = i;
        break;
      }
    }
    if (cut < 0) throw new Error(`file name too long for tar format: "${name}"`);
    block.write(name.slice(cut + 1), Off.Name, 100, 'utf8');
    block.write(name.slice(0, cut), Off.Prefix, 155, 'utf8');
  } else {
    block.write(name, Off.Name, 100, 'utf8');
  }
  writeOctal(block, Off.Mode, 8, entry.mode & 0o7777);
  writeOctal(block, Off.Uid, 8, 0);
  writeOctal(block, Off.Gid, 8, 0);
  const size = entry.type === 'file' ? entry.size : 0;
  if (size >= 0o77777777777) {
    block[Off.Size] = 0x80;
    let v = size;
    for (let i = Off.Size + 11; i > Off.Size; i--) {
      block[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else writeOctal(block, Off.Size, 12, size);
  writeOctal(block, Off.Mtime, 12, Math.floor(entry.mtime));
  block[Off.Type] = TYPE_FLAG[entry.type].charCodeAt(0);
  if (Buffer.byteLength(entry.linkname) > 99) throw new Error(`symbolic link target too long for tar format: "${entry.linkname}"`);
  block.write(entry.linkname, Off.Linkname, 100, 'utf8');
  block.write('ustar\0', Off.Magic, 6, 'latin1');
  block.write('00', Off.Version, 2, 'latin1');
  block.write('postgres', Off.Uname, 32, 'latin1');
  block.write('postgres', Off.Gname, 32, 'latin1');
  block.fill(0x20, Off.Checksum, Off.Checksum + 8);
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += block[i]!;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', Off.Checksum, 8, 'latin1');
  return block;
}

export const TAR_END = Buffer.alloc(2 * TAR_BLOCK);
