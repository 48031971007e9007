// A backup set's manifest as text (manifest.ts says what it holds). From format 4 on
// the text begins with the SHA-256 of the rest — the JSON text without that member —
// so that one flipped bit in a path, a size or a place in a bundle is caught
// (pgBackRest checksums its manifest too).
//
// The text is made in chunks, twice: once to hash, once to write. At 100,000 files it
// is 18 MB, and made whole it was held three times over (the JSON string, the string
// with the checksum put in front, the Buffer) at the very end of a backup, when the
// heap is at its largest: 45 MB of that backup's peak.

import { createHash } from 'node:crypto';
import type { BackupSetManifest } from './manifest.js';

/** How the text of format 4 begins: the checksum member, then the rest of the JSON object. */
export const SUM_PREFIX = '{"manifest_sha256":"';

/** About how many characters go into one chunk. */
const CHUNK = 64 * 1024;

/** The manifest's text, whole (manifestChunks joined). */
export function serializeManifest(m: BackupSetManifest): Buffer {
  return Buffer.concat([...manifestChunks(m)]);
}

/** The manifest's text in chunks of about 64 KiB, each made as it is asked for. */
export function* manifestChunks(m: BackupSetManifest): Generator<Buffer> {
  if (m.format_version < 4) {
    for (const text of grouped(jsonPieces(m))) yield Buffer.from(text);
    yield Buffer.from('\n');
    return;
  }
  const hash = createHash('sha256');
  for (const text of grouped(jsonPieces(m))) hash.update(text);
  yield Buffer.from(`${SUM_PREFIX}${hash.digest('hex')}",`);
  let first = true;
  for (const text of grouped(jsonPieces(m))) {
    yield Buffer.from(first ? text.slice(1) : text); // the object's "{" is the prefix's
    first = false;
  }
  yield Buffer.from('\n');
}

/**
 * JSON.stringify(m)'s text, in pieces: each member of the object but the arrays, which
 * come an element at a time, as JSON.stringify writes them (a member it leaves out is
 * left out, an element it writes as null is null).
 */
function* jsonPieces(m: BackupSetManifest): Generator<string> {
  let sep = '{';
  for (const [key, value] of Object.entries(m)) {
    if (!Array.isArray(value)) {
      const text = JSON.stringify(value) as string | undefined;
      if (text === undefined) continue;
      yield `${sep}${JSON.stringify(key)}:${text}`;
      sep = ',';
      continue;
    }
    yield `${sep}${JSON.stringify(key)}:[`;
    sep = ',';
    for (let i = 0; i < value.length; i++) yield (i === 0 ? '' : ',') + ((JSON.stringify(value[i]) as string | undefined) ?? 'null');
    yield ']';
  }
  yield sep === '{' ? '{}' : '}';
}

function* grouped(pieces: Iterable<string>): Generator<string> {
  let text = '';
  for (const p of pieces) {
    text += p;
    if (text.length >= CHUNK) {
      yield text;
      text = '';
    }
  }
  if (text !== '') yield text;
}
