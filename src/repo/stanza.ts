// The stanza record: one cluster in a repository, fixed to its system
// identifier, major version and WAL segment size when `stanza-create` runs.
// Every later command compares what it sees with this record.

import { readFileSync, mkdirSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PgpitrError, storageError } from '../common/errors.js';
import { writeFileAtomicSync, fsyncPathSync } from '../storage/durable.js';
import { REPO_MARKER, REPO_FORMAT_VERSION, stanzaDir, archiveDir } from './layout.js';

export interface StanzaInfo {
  format: 'pgpitr-stanza';
  format_version: 1;
  stanza: string;
  system_identifier: string;
  pg_major: number;
  wal_segment_size: number;
  created_at: string;
}

export function readStanza(repo: string, stanza: string): StanzaInfo {
  checkRepository(repo);
  const path = join(stanzaDir(repo, stanza), 'stanza.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PgpitrError('ERR_NOT_FOUND', `stanza "${stanza}" does not exist in repository "${repo}"`, {
        hint: `check the stanza name (--stanza, PGPITR_STANZA, the configuration file), or create the stanza with: pgpitr stanza-create --repo ${repo} --stanza ${stanza}`,
      });
    }
    throw storageError('read', path, e);
  }
  try {
    const info = JSON.parse(text) as StanzaInfo;
    if (info.format !== 'pgpitr-stanza') throw new Error('not a stanza file');
    return info;
  } catch (e) {
    throw new PgpitrError('ERR_STORAGE', `stanza file "${path}" is damaged: ${(e as Error).message}`, {
      hint: 'restore it from a copy of the repository, or recreate the stanza in a new repository',
    });
  }
}

/**
 * The archive directory of a stanza whose repository, record and archive directory are all
 * there and readable, so that a file missing from it is truly not archived. Anything else
 * (the repository not mounted, a misspelt stanza, a damaged record) throws.
 */
export function existingArchiveDir(repo: string, stanza: string): string {
  readStanza(repo, stanza);
  const dir = archiveDir(repo, stanza);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    throw storageError('open the archive directory', dir, e);
  }
  if (!isDir) throw new PgpitrError('ERR_STORAGE', `"${dir}" is not a directory`, { hint: 'the repository is damaged: restore it from a copy' });
  return dir;
}

export function checkRepository(repo: string): void {
  const marker = join(repo, REPO_MARKER);
  if (!existsSync(repo)) {
    throw new PgpitrError('ERR_STORAGE', `repository "${repo}" does not exist or cannot be reached`, {
      hint: 'check --repo (or repo= in the configuration file) and that the file system is mounted',
    });
  }
  if (!existsSync(marker)) {
    throw new PgpitrError('ERR_STORAGE', `"${repo}" is not a pgpitr repository (no ${REPO_MARKER})`, {
      hint: 'check --repo and that the repository\'s file system is mounted; a new repository is initialised by pgpitr stanza-create',
    });
  }
}

/** Creates the repository marker (if new) and the stanza record; refuses to change an existing one. */
export function createStanza(repo: string, info: Omit<StanzaInfo, 'format' | 'format_version' | 'created_at'>): { info: StanzaInfo; created: boolean } {
  try {
    mkdirSync(repo, { recursive: true, mode: 0o750 });
  } catch (e) {
    throw storageError('create repository directory', repo, e);
  }
  const marker = join(repo, REPO_MARKER);
  if (!existsSync(marker)) {
    writeFileAtomicSync(marker, JSON.stringify({ format: 'pgpitr-repository', format_version: REPO_FORMAT_VERSION }, null, 2) + '\n', true, 0o640);
  }
  const dir = stanzaDir(repo, info.stanza);
  if (existsSync(join(dir, 'stanza.json'))) {
    const existing = readStanza(repo, info.stanza);
    if (existing.system_identifier !== info.system_identifier || existing.pg_major !== info.pg_major) {
      throw new PgpitrError(
        'ERR_TARGET',
        `stanza "${info.stanza}" already exists for system ${existing.system_identifier} (PostgreSQL ${existing.pg_major}), not ${info.system_identifier} (PostgreSQL ${info.pg_major})`,
        { hint: 'use another stanza name or another repository for this cluster' },
      );
    }
    return { info: existing, created: false };
  }
  try {
    mkdirSync(archiveDir(repo, info.stanza), { recursive: true, mode: 0o750 });
  } catch (e) {
    throw storageError('create directory', archiveDir(repo, info.stanza), e);
  }
  const full: StanzaInfo = { format: 'pgpitr-stanza', format_version: 1, ...info, created_at: new Date().toISOString() };
  writeFileAtomicSync(join(dir, 'stanza.json'), JSON.stringify(full, null, 2) + '\n', true, 0o640);
  fsyncPathSync(repo);
  return { info: full, created: true };
}
