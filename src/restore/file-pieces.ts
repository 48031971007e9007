// Cutting a large file across restore's copier threads. A cluster's largest
// files are its 1 GiB relation segments: restored whole, one copier writes the
// largest while the others run out of work (measured at scale 100: one copier
// busy with 1 GiB, the other done with the remaining 0.5 GiB half-way). Cut
// in pieces, each copier decodes and writes some of them at their place in the
// file, and the main thread checks the file whole by combining the pieces'
// CRC-32C.
//
// A file can be cut where its stored bytes can: an uncompressed one anywhere,
// a compressed one at the frames its manifest entry indexes (a parallel
// backup's readers compress 1 MiB at a time, each a frame of its own). Only
// where the copiers read the stored bytes themselves from a local, unencrypted
// file, and never for delta (its "already there" test is of the whole file).

import type { FrameIndex, ManifestFile } from '../repo/backup-set/manifest.js';
import type { ThreadSource } from '../repo/backup-set/reader.js';
import { crc32cCombine } from '../storage/filter/crc32c-combine.js';

/** Files smaller than this are restored whole. */
export const PIECE_MIN_FILE = 64 * 1024 * 1024;
/** How much of an uncompressed file a piece holds. */
const PIECE = 32 * 1024 * 1024;

export interface FilePiece {
  /** The original bytes: from `at`, `length` of them. */
  at: number;
  length: number;
  /** Their stored bytes in the source file: from `offset`, `storedLength` of them (-1: to its end). */
  offset: number;
  storedLength: number;
}

/** The pieces to restore `f` in, or null to restore it whole. */
export function piecesOf(f: ManifestFile, src: ThreadSource, delta: boolean): FilePiece[] | null {
  if (delta || f.size < PIECE_MIN_FILE || f.crc32c === undefined) return null;
  if (src.file === null || src.decrypt !== null || src.offset !== 0 || src.length !== -1) return null;
  if (src.compression === 'none') return cut(f.size, PIECE, (i) => i * PIECE);
  if (f.index === undefined) return null;
  const index: FrameIndex = f.index;
  return cut(f.size, index.every, (i) => (i === 0 ? 0 : index.stored[i - 1]!));
}

function cut(size: number, every: number, storedAt: (i: number) => number): FilePiece[] {
  const n = Math.ceil(size / every);
  const pieces: FilePiece[] = [];
  for (let i = 0; i < n; i++) {
    const at = i * every;
    const offset = storedAt(i);
    pieces.push({ at, length: Math.min(every, size - at), offset, storedLength: i + 1 < n ? storedAt(i + 1) - offset : -1 });
  }
  return pieces;
}

/** The file's CRC-32C from its pieces' (in order). */
export function combinedCrc(pieces: FilePiece[], crcs: number[]): number {
  let crc = crcs[0]!;
  for (let i = 1; i < pieces.length; i++) crc = crc32cCombine(crc, crcs[i]!, pieces[i]!.length);
  return crc;
}
