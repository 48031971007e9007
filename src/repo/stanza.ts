// The stanza record: one cluster in a repository, fixed to its system
// identifier, major version and WAL segment size when `stanza-create` runs.
// Every later command compares what it sees with this record.

import { OtherKeyError, PgpitrError } from '../common/errors.js';
import { readAll } from '../storage/storage.js';
import { REPO_MARKER, REPO_MARKER_COPY, REPO_FORMAT_VERSION, STANZA_RECORD, archivePath, checkNewStanzaName, stanzaPath, stanzaRecordPath } from './layout.js';
import { parseTempName } from './archive-temp.js';
import { storageJoin } from '../storage/storage-path.js';
import { displayPath } from './repository.js';
import type { Repository } from './repository.js';
import { noteStanzaPresent } from './stanza-presence.js';
import { describeRepairs, openedKeyOf, readMarkerPair, repairMarker, usableMarkers, writeRepoMarker } from './repo-marker.js';
import type { MarkerFields } from './repo-marker.js';

export interface StanzaInfo {
  format: 'pgpitr-stanza';
  format_version: 1;
  stanza: string;
  system_identifier: string;
  pg_major: number;
  wal_segment_size: number;
  created_at: string;
}

/** A record encrypted, read with no cipher set: the settings are wrong, not the record (stanzasReadable). */
class EncryptedRecordError extends PgpitrError {}

export async function readStanza(repo: Repository, stanza: string): Promise<StanzaInfo> {
  const path = stanzaRecordPath(stanza);
  // The record is read while the repository is checked (on object storage each is a round trip,
  // and archive-push pays both per process); the check's verdict comes first.
  const reading = readAll(repo.storage, path);
  reading.catch(() => {});
  await checkRepository(repo);
  const data = await reading;
  if (data === null) {
    // A misspelt name is likelier than a stanza never made where others are: they are named first.
    const others = await listStanzas(repo).catch(() => []);
    const create = `pgpitr stanza-create --repo ${repo.location} --stanza ${stanza}`;
    throw new PgpitrError('ERR_NOT_FOUND', `stanza "${stanza}" does not exist in repository "${repo.location}"${others.length > 0 ? ` (it holds ${others.slice(0, 5).map((o) => `"${o}"`).join(', ')}${others.length > 5 ? ', ...' : ''})` : ''}`, {
      hint: others.length > 0
        ? `check the stanza name (--stanza, PGPITR_STANZA, the configuration file; archive_command's --stanza); only for a cluster that has no stanza yet: ${create}`
        : `check the stanza name (--stanza, PGPITR_STANZA, the configuration file), or create the stanza with: ${create}`,
    });
  }
  if (!repo.encryption && data.subarray(0, 6).toString('latin1') === 'PGPENC') {
    throw new EncryptedRecordError('ERR_USAGE', `repository ${repo.location} is encrypted`, { hint: 'set repoN-cipher-type=aes-256-gcm and its passphrase, repoN-cipher-pass (N: this repository\'s number, 1 for --repo PATH), in the configuration file' });
  }
  try {
    const info = JSON.parse(data.toString('utf8')) as StanzaInfo;
    if (info.format !== 'pgpitr-stanza') throw new Error('not a stanza file');
    noteStanzaPresent(repo, stanza, info.created_at);
    return info;
  } catch (e) {
    throw new PgpitrError('ERR_STORAGE', `stanza file "${displayPath(repo, path)}" is damaged: ${(e as Error).message}`, {
      hint: 'restore it from a copy of the repository, or recreate the stanza in a new repository',
    });
  }
}

/**
 * Checks that a stanza's repository, record and archive directory are all there and readable,
 * so that a file missing from the archive is truly not archived; returns the stanza record.
 * Anything else (the repository not mounted, a misspelt stanza, a damaged record) throws.
 */
export async function readStanzaWithArchive(repo: Repository, stanza: string): Promise<StanzaInfo> {
  const info = await readStanza(repo, stanza);
  const path = archivePath(stanza);
  const entry = await repo.storage.info(path);
  if (entry === null && repo.storage.features.directories) {
    throw new PgpitrError('ERR_STORAGE', `could not open the archive directory "${displayPath(repo, path)}": it does not exist`, {
      hint: 'the repository is damaged: restore it from a copy',
    });
  }
  // A link is taken for what it names (an archive moved to another disk), as stat() would: one
  // that leads nowhere (that disk not mounted) must not read as an empty archive, whose every
  // file archive-get would answer "not in the archive", ending recovery there.
  if (entry !== null && entry.type === 'link' && entry.linksTo !== undefined && entry.linksTo !== 'directory') {
    throw new PgpitrError('ERR_STORAGE', `the archive directory "${displayPath(repo, path)}" is a link to ${entry.linksTo === 'nothing' ? 'something that does not exist' : 'something that is not a directory it can read'}`, {
      hint: 'mount the file system the link leads to (or repair the link), then run the command again',
    });
  }
  if (entry !== null && entry.type !== 'directory' && entry.type !== 'link') throw new PgpitrError('ERR_STORAGE', `"${displayPath(repo, path)}" is not a directory`, { hint: 'the repository is damaged: restore it from a copy' });
  return info;
}

export async function checkRepository(repo: Repository): Promise<void> {
  if (repo.storage.features.directories && (await repo.storage.info('')) === null) {
    throw new PgpitrError('ERR_STORAGE', `repository "${repo.location}" does not exist or cannot be reached`, {
      hint: "check the repository's path (--repo PATH, repo=, or repoN-path, PGPITR_REPON_PATH) and that its file system is mounted",
    });
  }
  if ((await repo.storage.info(REPO_MARKER)) === null && (await repo.storage.info(REPO_MARKER_COPY)) === null) {
    throw new PgpitrError('ERR_STORAGE', `"${repo.location}" is not a pgpitr repository (no ${REPO_MARKER})`, {
      hint: "check the repository's path (--repo PATH, repo=, or repoN-path, PGPITR_REPON_PATH) and that its file system is mounted; a new repository is initialised by pgpitr stanza-create",
    });
  }
}

/**
 * A repository is encrypted or not from its creation: a stanza is never written in the clear into
 * an encrypted one, nor with another key (two stanza-creates that each made a new key).
 */
async function checkEncryption(repo: Repository, markers: MarkerFields[]): Promise<void> {
  const keyIds = markers.flatMap((m) => {
    const id = (m['cipher'] as { key_id?: string } | undefined)?.key_id;
    return id === undefined ? [] : [id];
  });
  if (keyIds.length > 0 && !repo.encryption) {
    throw new PgpitrError('ERR_USAGE', `repository ${repo.location} is encrypted`, { hint: 'set repoN-cipher-type=aes-256-gcm and its passphrase, repoN-cipher-pass (N: this repository\'s number, 1 for --repo PATH)' });
  }
  // The key opened is one of the two files' (the other, damaged, is put back from it) unless this
  // process made a new one for a repository another stanza-create created meanwhile.
  if (repo.encryption && !keyIds.includes((await repo.encryption.block()).key_id)) {
    throw new PgpitrError('ERR_USAGE', `repository ${repo.location} was created by another stanza-create at the same time, with another key`, { hint: 'run the command again' });
  }
}

/**
 * How many stanzas' records read with the repository as opened (its key, or no cipher): proof that
 * key is the data's when above 0. A record that shows the key or the settings wrong (encrypted with
 * another key; encrypted, and no cipher set) is an error naming it; other damage to a record (one
 * stanza's own trouble, a copied directory) is passed over, as no proof either way.
 */
export async function stanzasReadable(repo: Repository): Promise<number> {
  let read = 0;
  for (const name of await listStanzas(repo)) {
    try {
      await readStanza(repo, name);
      read++;
    } catch (e) {
      if (!(e instanceof OtherKeyError || e instanceof EncryptedRecordError)) continue;
      throw new PgpitrError('ERR_STORAGE', `stanza "${name}" in ${repo.location} cannot be read with this repository's marker and settings, so nothing was written: ${e.message}`, e.hint ? { hint: e.hint } : {});
    }
  }
  return read;
}

/** The names of the stanzas a repository holds. */
export async function listStanzas(repo: Repository): Promise<string[]> {
  const out: string[] = [];
  for (const e of await repo.storage.list('', { detail: false })) {
    if (e.type !== 'directory' && e.type !== 'link') continue;
    if ((await repo.storage.info(`${e.name}/stanza.json`)) !== null) out.push(e.name);
  }
  return out.sort();
}

/**
 * Creates the repository marker (if new) and the stanza record; refuses to change an existing one.
 * An existing repository's marker or its copy, missing or damaged, is put back (`repaired` says
 * what was). The caller holds the repository lock.
 */
export async function createStanza(repo: Repository, info: Omit<StanzaInfo, 'format' | 'format_version' | 'created_at'>): Promise<{ info: StanzaInfo; created: boolean; repaired: string | null }> {
  const storage = repo.storage;
  const markers = usableMarkers(await readMarkerPair(storage), repo.location);
  let repaired: string | null = null;
  if (markers.length === 0) {
    // An encrypted repository whose marker is gone still holds what its key encrypted: a new key
    // written now would make the lost one unrecoverable by putting the marker back.
    const stanzas = repo.encryption ? await listStanzas(repo) : [];
    if (stanzas.length > 0) {
      throw new PgpitrError('ERR_STORAGE', `repository ${repo.location} holds stanzas (${stanzas.join(', ')}) but no ${REPO_MARKER}: its key, wrapped in that file, is lost`, {
        hint: `restore ${REPO_MARKER} from a copy of the repository (or a backup of the host): without it nothing stored there can be decrypted; pgpitr will not write a new key over it`,
      });
    }
    const cipher = repo.encryption ? { cipher: await repo.encryption.block() } : {};
    await writeRepoMarker(storage, { format: 'pgpitr-repository', format_version: REPO_FORMAT_VERSION, ...cipher });
  } else {
    await checkEncryption(repo, markers);
    // Nothing is written (a new stanza, a marker put back) with a key or settings the stanzas already
    // there cannot be read with: a marker replaced by another repository's would otherwise spread.
    const proven = (await stanzasReadable(repo)) > 0;
    repaired = describeRepairs(await repairMarker(storage, await openedKeyOf(repo, proven)));
  }
  const recordPath = stanzaRecordPath(info.stanza);
  if ((await storage.info(recordPath)) !== null) {
    const existing = await readStanza(repo, info.stanza);
    if (existing.system_identifier !== info.system_identifier || existing.pg_major !== info.pg_major) {
      throw new PgpitrError(
        'ERR_TARGET',
        `stanza "${info.stanza}" already exists for system ${existing.system_identifier} (PostgreSQL ${existing.pg_major}), not ${info.system_identifier} (PostgreSQL ${info.pg_major})`,
        { hint: 'use another stanza name or another repository for this cluster' },
      );
    }
    return { info: existing, created: false, repaired };
  }
  // Files without a record: what an interrupted stanza-delete left, or WAL an asynchronous pusher
  // kept storing into a deleted stanza. Another cluster's WAL must never appear in a new stanza.
  let left = (await storage.list(stanzaPath(info.stanza), { recursive: true, detail: false })).filter((e) => e.type === 'file');
  // Only the record's own temporary file: a stanza-create killed before its rename (none runs
  // beside this one, under the repository lock). Removed, and the stanza made.
  if (left.length > 0 && left.every((e) => parseTempName(e.name) !== null && e.name.startsWith(`${STANZA_RECORD}.tmp-`))) {
    for (const e of left) await storage.remove(storageJoin(stanzaPath(info.stanza), e.name));
    left = [];
  }
  if (left.length > 0) {
    throw new PgpitrError('ERR_TARGET', `stanza "${info.stanza}" has no record in repository "${repo.location}" but its directory holds ${left.length} file(s) (${left[0]!.name}${left.length > 1 ? ', ...' : ''}): what an interrupted stanza-delete leaves`, {
      hint: `finish the delete first: pgpitr stanza-delete --repo ${repo.location} --stanza ${info.stanza} --force (and check that no archive_command or asynchronous pusher still stores into it)`,
    });
  }
  checkNewStanzaName(info.stanza);
  // The archive directory exists from the start: archive-get tells "not archived" from "no archive" by it.
  await storage.pathCreate?.(archivePath(info.stanza));
  const full: StanzaInfo = { format: 'pgpitr-stanza', format_version: 1, ...info, created_at: new Date().toISOString() };
  await storage.write(recordPath, Buffer.from(JSON.stringify(full, null, 2) + '\n'));
  await storage.pathSync?.(stanzaPath(info.stanza));
  if (markers.length === 0 && repo.encryption) await refuseKeyLostToRace(repo, recordPath, info.stanza);
  return { info: full, created: true, repaired };
}

/**
 * A new encrypted repository's first stanza-create, run twice at once on a store whose locks are
 * advisory (it ignores exclusive create): each made a key and wrote the marker, and the last one
 * written won. The record just written under the key that lost could never be read: removed, said.
 */
async function refuseKeyLostToRace(repo: Repository, recordPath: string, stanza: string): Promise<void> {
  const ours = (await repo.encryption!.block()).key_id;
  const held = usableMarkers(await readMarkerPair(repo.storage), repo.location).map((m) => (m['cipher'] as { key_id?: unknown } | undefined)?.key_id);
  if (held.length > 0 && held.every((k) => k === ours)) return;
  await repo.storage.remove(recordPath).catch(() => undefined);
  throw new PgpitrError('ERR_TARGET', `the marker of repository ${repo.location} was written at the same time by another stanza-create, with another key: stanza "${stanza}" was not created`, {
    hint: 'run stanza-create again, one at a time (the locks of this store are advisory: it ignores exclusive create)',
  });
}
