// The repository marker, pgpitr-repo.json, and its copy, pgpitr-repo.json.copy.
// The marker says a directory or bucket is a pgpitr repository and, when it is
// encrypted, holds the only wrapped repository key: a torn or bit-flipped
// marker would make every backup in it unreadable. So it is written twice, the
// marker and then its copy, each atomically; a command reads the marker and
// falls back to the copy when the marker is missing or damaged (an encrypted
// repository also tries the copy's key when the marker's does not open:
// open-repository.ts). stanza-create and check put back whichever of the two is
// missing or damaged from the one that serves (repairMarker).

import { isDeepStrictEqual } from 'node:util';
import { isPgpitrError, PgpitrError } from '../common/errors.js';
import { readAll } from '../storage/storage.js';
import type { Storage } from '../storage/storage.js';
import { REPO_FORMAT_VERSION, REPO_MARKER, REPO_MARKER_COPY } from './layout.js';
import type { Repository } from './repository.js';

export type MarkerFields = Record<string, unknown>;

/** One of the two files as read: sound (an object of JSON), missing, or damaged and why. */
export type MarkerFile = { state: 'sound'; fields: MarkerFields; bytes: Buffer } | { state: 'missing' } | { state: 'damaged'; reason: string; error?: unknown };

export interface MarkerPair {
  marker: MarkerFile;
  copy: MarkerFile;
}

/** One of the two files (REPO_MARKER or REPO_MARKER_COPY) as read. */
export async function readMarkerFile(storage: Storage, path: string): Promise<MarkerFile> {
  let bytes: Buffer | null;
  try {
    bytes = await readAll(storage, path);
  } catch (e) {
    // One file that cannot be read (no permission, a directory in its place) is one damaged file:
    // the other serves. The store out of reach, a signal or bad settings are the command's failure.
    if (isPgpitrError(e) && ['ERR_CONNECTION', 'ERR_CONNECTION_LOST', 'ERR_INTERRUPTED', 'ERR_USAGE'].includes(e.code)) throw e;
    return { state: 'damaged', reason: `cannot be read: ${(e as Error).message}`, error: e };
  }
  if (bytes === null) return { state: 'missing' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    return { state: 'damaged', reason: (e as Error).message };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || (parsed as MarkerFields)['format'] !== 'pgpitr-repository') {
    return { state: 'damaged', reason: 'not a pgpitr repository marker' };
  }
  return { state: 'sound', fields: parsed as MarkerFields, bytes };
}

/** A marker written by a newer pgpitr (a repository format this one does not know): never read nor written over. */
function newerFormat(f: MarkerFile): boolean {
  if (f.state !== 'sound') return false;
  const v = f.fields['format_version'];
  return typeof v === 'number' && v > REPO_FORMAT_VERSION;
}

/** The two files with their names, the marker first. */
function named(pair: MarkerPair): [MarkerFile, string][] {
  return [
    [pair.marker, REPO_MARKER],
    [pair.copy, REPO_MARKER_COPY],
  ];
}

/** Both files as they are now. */
export async function readMarkerPair(storage: Storage): Promise<MarkerPair> {
  const [marker, copy] = await Promise.all([readMarkerFile(storage, REPO_MARKER), readMarkerFile(storage, REPO_MARKER_COPY)]);
  return { marker, copy };
}

function describe(f: MarkerFile, name: string): string {
  return f.state === 'damaged' ? `${name} is damaged (${f.reason})` : `${name} is ${f.state}`;
}

/**
 * The fields of the files that can be read, the marker's first: empty when neither exists (no
 * repository there); neither readable while one is damaged is an error naming both.
 */
export function usableMarkers(pair: MarkerPair, location: string): MarkerFields[] {
  for (const [f, name] of named(pair)) {
    if (newerFormat(f)) {
      throw new PgpitrError('ERR_STORAGE', `${location}/${name} records repository format ${String((f as { fields: MarkerFields }).fields['format_version'])}; this pgpitr reads format ${REPO_FORMAT_VERSION}`, {
        hint: 'use the pgpitr version that wrote it (a newer one); if the file was altered, put back the marker from a copy',
      });
    }
  }
  const usable = [pair.marker, pair.copy].flatMap((f) => (f.state === 'sound' ? [f.fields] : []));
  if (usable.length > 0 || (pair.marker.state === 'missing' && pair.copy.state === 'missing')) return usable;
  // Neither could be read at all (another user's repository, a dead mount): that error, not "damaged".
  if (pair.marker.state === 'damaged' && pair.marker.error !== undefined && (pair.copy.state !== 'damaged' || pair.copy.error !== undefined)) throw pair.marker.error;
  throw new PgpitrError('ERR_STORAGE', `repository marker ${location}/${REPO_MARKER} cannot be used: ${describe(pair.marker, REPO_MARKER)}, and ${describe(pair.copy, REPO_MARKER_COPY)}`, {
    hint: `put back ${REPO_MARKER} from a copy of the repository (or a backup of the host): an encrypted repository's key is wrapped in it`,
  });
}

/** The marker's fields a command goes by: the marker's when it can be read, else its copy's; null when neither exists. */
export async function readRepoMarker(storage: Storage, location: string): Promise<MarkerFields | null> {
  return usableMarkers(await readMarkerPair(storage), location)[0] ?? null;
}

function markerBytes(fields: MarkerFields): Buffer {
  return Buffer.from(JSON.stringify(fields, null, 2) + '\n');
}

/** A new repository's marker: the marker, then its copy. The caller holds the repository lock. */
export async function writeRepoMarker(storage: Storage, fields: MarkerFields): Promise<void> {
  const bytes = markerBytes(fields);
  await storage.write(REPO_MARKER, bytes);
  await storage.write(REPO_MARKER_COPY, bytes);
}

/**
 * Sets one field in each of the two files that can be read, each keeping the rest of its own
 * content: one file's content is never written over the other here (a marker whose wrapped key
 * was damaged must not replace a sound copy). Returns false when no file could be read.
 */
export async function setMarkerField(storage: Storage, name: string, value: unknown): Promise<boolean> {
  const pair = await readMarkerPair(storage);
  let any = false;
  for (const [file, path] of named(pair)) {
    if (file.state !== 'sound') continue;
    any = true;
    if (isDeepStrictEqual(file.fields[name], value)) continue;
    await storage.write(path, markerBytes({ ...file.fields, [name]: value }));
  }
  return any;
}

/** One file put back: its name, what it was, and the file it was rewritten from. */
export interface MarkerRepair {
  name: string;
  was: 'missing' | 'damaged' | 'different' | 'another key' | 'no key';
  reason?: string;
  from: string;
}

/** The repairs as a sentence; null when there were none. */
export function describeRepairs(repairs: MarkerRepair[]): string | null {
  const was = (r: MarkerRepair) =>
    r.was === 'damaged' ? `was damaged (${r.reason})` : r.was === 'another key' ? 'held a wrapped key that does not open' : r.was === 'no key' ? 'held no encryption key' : r.was === 'missing' ? 'was missing' : 'was behind';
  return repairs.length > 0 ? repairs.map((r) => `${r.name} ${was(r)}: rewritten from ${r.from}`).join('; ') : null;
}

/** Whether a repair is news of damage (a missing copy, or one behind after a crash between the two writes, is not). */
export function isDamageRepair(r: MarkerRepair): boolean {
  return r.was === 'damaged' || r.was === 'another key' || r.was === 'no key' || (r.was === 'missing' && r.name === REPO_MARKER);
}

/** The key an encrypted repository was opened with: its block, and whether the passphrase opens another block. */
export interface OpenedKey {
  block: unknown;
  opens(block: unknown): Promise<boolean>;
  /** The key read the stanzas' records (the caller did): another key that opens too is then another repository's. */
  proven?: boolean;
}

/** The key `repo` was opened with (`proven`: it read the stanzas' records); undefined for a repository not encrypted. */
export async function openedKeyOf(repo: Repository, proven = false): Promise<OpenedKey | undefined> {
  const e = repo.encryption;
  return e ? { block: await e.block(), opens: (b) => e.opens(b), proven } : undefined;
}

function twoKeys(): PgpitrError {
  return new PgpitrError('ERR_STORAGE', `${REPO_MARKER} and ${REPO_MARKER_COPY} hold two different repository keys, and the passphrase opens both`, {
    hint: `two stanza-creates made the repository at once: the key the stanza records were encrypted with is the one to keep; move the other file out of the repository (pgpitr info then says whether the stanzas can be read)`,
  });
}

/**
 * Puts back whichever of the marker and its copy is missing, damaged or behind, from the one that
 * serves: for an encrypted repository the one whose key opened (`key`), else the marker, else the
 * copy. A file holding a key is never written over by one holding none, nor by another key when the
 * passphrase opens its own (an error: which key the data needs is not known here). Returns what
 * was rewritten (nothing: both were sound and alike, or neither serves and opening the repository
 * said why). The caller holds the repository lock.
 */
export async function repairMarker(storage: Storage, key?: OpenedKey): Promise<MarkerRepair[]> {
  const pair = await readMarkerPair(storage);
  usableMarkers(pair, storage.location); // a newer format's marker is refused, never copied nor written over
  const serves = (f: MarkerFile): f is Extract<MarkerFile, { state: 'sound' }> => f.state === 'sound' && (key === undefined || isDeepStrictEqual(f.fields['cipher'], key.block));
  const source = serves(pair.marker) ? { file: pair.marker, name: REPO_MARKER } : serves(pair.copy) ? { file: pair.copy, name: REPO_MARKER_COPY } : null;
  if (source === null) return [];
  const done: MarkerRepair[] = [];
  for (const [file, name] of named(pair)) {
    if (name === source.name) continue;
    if (file.state === 'sound' && file.bytes.equals(source.file.bytes)) continue;
    let was: MarkerRepair['was'] = file.state === 'missing' ? 'missing' : file.state === 'damaged' ? 'damaged' : 'different';
    if (file.state === 'sound') {
      const theirs = file.fields['cipher'];
      if (key === undefined && theirs !== undefined) {
        throw new PgpitrError('ERR_STORAGE', `${name} in ${storage.location} holds an encryption key and ${source.name} does not`, {
          hint: `the repository is encrypted: give repoN-cipher-type and repoN-cipher-pass (${source.name} is then put back from ${name})`,
        });
      }
      if (key !== undefined && theirs === undefined) was = 'no key';
      else if (key !== undefined && !isDeepStrictEqual(theirs, key.block)) {
        // Another key that opens too: another repository's marker (same passphrase), unless nothing
        // says which key the stanzas were written with.
        if (!key.proven && (await key.opens(theirs))) throw twoKeys();
        was = 'another key';
      }
    }
    await storage.write(name, source.file.bytes);
    done.push({ name, was, ...(file.state === 'damaged' ? { reason: file.reason } : {}), from: source.name });
  }
  return done;
}

/**
 * What verify says of the two files (it writes nothing): a damaged one, a marker missing beside its
 * copy, one without the key the other holds, or one whose key is not the one that opened (`opened`,
 * an encrypted repository's). A missing copy alone is not a problem (a repository made before
 * copies were written: stanza-create or check writes it).
 */
export async function markerProblems(storage: Storage, opened?: unknown): Promise<{ object: string; problem: string }[]> {
  const pair = await readMarkerPair(storage);
  const out: { object: string; problem: string }[] = [];
  const fix = 'pgpitr check or stanza-create puts it back from the other';
  if (pair.marker.state === 'damaged') out.push({ object: REPO_MARKER, problem: `damaged (${pair.marker.reason}); ${fix}` });
  if (pair.marker.state === 'missing' && pair.copy.state !== 'missing') out.push({ object: REPO_MARKER, problem: `missing, while ${REPO_MARKER_COPY} is there; ${fix}` });
  if (pair.copy.state === 'damaged') out.push({ object: REPO_MARKER_COPY, problem: `damaged (${pair.copy.reason}); ${fix}` });
  for (const [file, name] of named(pair)) {
    if (file.state !== 'sound' || opened === undefined) continue;
    const theirs = file.fields['cipher'];
    if (theirs === undefined) out.push({ object: name, problem: `holds no encryption key, in an encrypted repository; ${fix}` });
    else if (!isDeepStrictEqual(theirs, opened)) out.push({ object: name, problem: `holds a wrapped key other than the one that opened the repository (damaged, or another repository's); ${fix}` });
  }
  if (opened === undefined && pair.marker.state === 'sound' && pair.copy.state === 'sound' && !isDeepStrictEqual(pair.marker.fields['cipher'], pair.copy.fields['cipher'])) {
    out.push({ object: REPO_MARKER_COPY, problem: `records another encryption key than ${REPO_MARKER}` });
  }
  return out;
}
