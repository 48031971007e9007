// The repositories a command works with, resolved from every place a setting
// can come from: --repoN-KEY flags, then PGPITR_REPON_KEY variables, then the
// configuration file (the stanza's section, then [global]). The legacy
// `--repo PATH` / PGPITR_REPO / repo= is repository 1's path, posix. Pure: no
// I/O, so that every rule here is unit-tested; open-repository.ts opens them.

import { isAbsolute, resolve } from 'node:path';
import { usageError } from '../common/errors.js';
import type { PgpitrError } from '../common/errors.js';
import { REPO_KEYS, SECRET_REPO_KEYS } from '../common/config-file.js';
import type { S3StorageSettings } from '../storage/s3/s3-settings.js';

export type CipherSettings = { type: 'none' } | { type: 'aes-256-gcm'; pass: string };

export interface RepoSettings {
  /** N of repoN. */
  index: number;
  type: 'posix' | 's3';
  /** posix: the repository's absolute directory; s3: the key prefix in the bucket ('/' or '/repo'). */
  path: string;
  s3?: S3StorageSettings;
  cipher: CipherSettings;
  retentionFull?: string;
  retentionWindow?: string;
}

/** Where a setting's value came from: a secret must never come from the command line. */
export interface RepoSettingSources {
  /** --repoN-KEY flags: "repoN-KEY" → value. */
  flags: Map<string, string>;
  env: NodeJS.ProcessEnv;
  /** The configuration file's value for the stanza (its section, then [global]). */
  config: (name: string) => string | undefined;
  /** The configuration file's names that exist (any section), to find which N are configured. */
  configNames: Iterable<string>;
  /** --repo PATH, PGPITR_REPO or repo= (in that order): repository 1's path. */
  legacyPath?: string;
  /** legacyPath came from the command line (--repo PATH): it wins over repo1-path from the environment or the file. */
  legacyFromFlag?: boolean;
}

/** PGPITR_REPO1_S3_KEY_SECRET for repo1-s3-key-secret. */
export function envName(index: number, key: string): string {
  return `PGPITR_REPO${index}_${key.toUpperCase().replace(/-/g, '_')}`;
}

/** Every repository configured anywhere, sorted by N (gaps allowed, as in pgBackRest). */
export function resolveRepositories(src: RepoSettingSources): RepoSettings[] {
  const indexes = new Set<number>();
  const note = (name: string) => {
    const m = /^repo(\d+)-/.exec(name);
    if (m) indexes.add(Number(m[1]));
  };
  for (const name of src.flags.keys()) note(name);
  for (const name of src.configNames) note(name);
  for (const name of Object.keys(src.env)) {
    const m = /^PGPITR_REPO([1-9]\d{0,2})_(.+)$/.exec(name); // as repoKey: no repository 0, no leading zero
    // Only a setting's variable makes a repository (a stray PGPITR_REPO2_X is ignored here; repo-options.ts warns of one for a configured repository).
    if (m && REPO_KEYS.has(m[2]!.toLowerCase().replace(/_/g, '-'))) indexes.add(Number(m[1]));
  }
  if (src.legacyPath !== undefined) indexes.add(1);
  return [...indexes].sort((a, b) => a - b).map((n) => resolveOne(n, src));
}

/**
 * Two repositories in one place (the same directory, one inside the other, the same bucket and
 * prefix): each command would work on it twice, and one repository's retention expire the backups
 * the other's keeps, while check and info show two copies that are one. The refusal, or null.
 */
export function repositoryOverlap(repos: RepoSettings[]): PgpitrError | null {
  const place = (r: RepoSettings): string => (r.type === 'posix' ? `posix:${r.path}` : `s3:${r.s3!.endpoint}/${r.s3!.bucket}/${r.s3!.prefix}`).replace(/\/+$/, '');
  for (const a of repos) {
    for (const b of repos) {
      if (a.index >= b.index) continue;
      const [pa, pb] = [place(a), place(b)];
      if (pa === pb || pb.startsWith(`${pa}/`) || pa.startsWith(`${pb}/`)) {
        return usageError(`repositories ${a.index} and ${b.index} are ${pa === pb ? 'the same place' : 'one inside the other'} (${describeRepository(a)}, ${describeRepository(b)})`, `give each repository a place of its own (repo${b.index}-path)`);
      }
    }
  }
  return null;
}

function resolveOne(index: number, src: RepoSettingSources): RepoSettings {
  const name = (key: string) => `repo${index}-${key}`;
  const get = (key: string): string | undefined => {
    const flag = src.flags.get(name(key));
    if (flag !== undefined && SECRET_REPO_KEYS.has(key)) {
      throw usageError(`${name(key)} is not allowed on the command line, where every user of the host can read it in the process list`, `put it in the configuration file (readable only by its owner) or in the environment as ${envName(index, key)}`);
    }
    return flag ?? src.env[envName(index, key)] ?? src.config(name(key));
  };
  const pathFlag = src.flags.get(name('path'));
  const pathElsewhere = src.legacyFromFlag ? pathFlag : get('path');
  // A --repo1-path flag wins over repo= of the file and PGPITR_REPO, as every flag wins over them
  // (restore_command names the path restore used so, with --repo N: the server's file or
  // environment may give it as repo= too). Given twice otherwise: which one was meant cannot be told.
  const legacyPath = index === 1 && !src.legacyFromFlag && pathFlag !== undefined ? undefined : src.legacyPath;
  if (index === 1 && legacyPath !== undefined && pathElsewhere !== undefined) {
    const legacyFrom = src.legacyFromFlag ? '--repo' : src.env.PGPITR_REPO === legacyPath ? 'PGPITR_REPO in the environment' : 'repo= in the configuration file';
    const pathFrom = pathFlag !== undefined ? '--repo1-path' : src.env[envName(1, 'path')] !== undefined ? `${envName(1, 'path')} in the environment` : 'repo1-path= in the configuration file';
    throw usageError(`repository 1 is given twice: "${legacyPath}" by ${legacyFrom}, and "${pathElsewhere}" by ${pathFrom}`, 'keep one of them (repo and repo1-path name the same repository; a setting of one spelling does not override the other)');
  }
  const type = get('type') ?? 'posix';
  if (type !== 'posix' && type !== 's3') throw usageError(`invalid ${name('type')} "${type}"`, 'use posix or s3');
  const cipher = cipherSettings(index, get('cipher-type') ?? 'none', get('cipher-pass'));
  const retention = { retentionFull: get('retention-full'), retentionWindow: get('retention-window') };
  const drop = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  if (type === 'posix') {
    const path = (index === 1 ? legacyPath : undefined) ?? get('path');
    if (path === undefined) throw usageError(`repository ${index} has no path`, `set ${name('path')} (an absolute directory)`);
    if (!isAbsolute(path)) {
      throw usageError(`repository path "${path}" is relative`, `give an absolute path (such as ${resolve(path)}): archive_command and restore_command run in the data directory, so a relative path names another directory there than in a shell`);
    }
    for (const key of REPO_KEYS) {
      if ((key.startsWith('s3-') || key.startsWith('storage-')) && get(key) !== undefined) {
        throw usageError(`${name(key)} is set but repository ${index} is of type posix`, `set ${name('type')}=s3, or remove ${name(key)}`);
      }
    }
    return drop({ index, type, path: resolve(path), cipher, ...retention });
  }
  if (index === 1 && legacyPath !== undefined) {
    throw usageError(`repo (--repo PATH, PGPITR_REPO or repo=) names a directory but repository 1 is of type s3`, `give its key prefix as ${name('path')}`);
  }
  const s3 = s3Settings(index, get);
  return drop({ index, type, path: s3.prefix === '' ? '/' : `/${s3.prefix}`, s3, cipher, ...retention });
}

function s3Settings(index: number, get: (key: string) => string | undefined): S3StorageSettings {
  const name = (key: string) => `repo${index}-${key}`;
  const need = (key: string, what: string): string => {
    const v = get(key);
    if (v === undefined || v === '') throw usageError(`repository ${index} is of type s3 but has no ${name(key)}`, `set ${name(key)} (${what})`);
    return v;
  };
  const endpointText = need('s3-endpoint', 'the S3 host, such as s3.eu-west-1.amazonaws.com, or a URL such as http://127.0.0.1:9000');
  const bucket = need('s3-bucket', 'the bucket name');
  const region = need('s3-region', 'the region, such as eu-west-1 (us-east-1 for most S3-compatible stores)');
  const portText = get('storage-port');
  if (endpointText.includes('@')) {
    // Never echoed, however it parses (a secret with a "/" reads as a port, or a path): what stands
    // before the @ may be a key and its secret, and from archive_command this lands in the server log.
    throw usageError(`invalid ${name('s3-endpoint')}: it holds credentials before an "@" (not shown)`, `give the key as ${name('s3-key')} and its secret as ${name('s3-key-secret')} (or the AWS environment variables), and the endpoint as https://host[:port]`);
  }
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpointText) ? endpointText : `https://${endpointText}`);
  } catch {
    throw usageError(`invalid ${name('s3-endpoint')} "${endpointText}"`, 'give a host name, or a URL starting with https:// or http://');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.pathname !== '/' || url.search !== '') {
    throw usageError(`invalid ${name('s3-endpoint')} "${endpointText}"`, 'give a host name (and a port), or a URL of the form https://host[:port] or http://host[:port], with no path');
  }
  if (portText !== undefined) {
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw usageError(`invalid ${name('storage-port')} "${portText}"`, 'use a port number from 1 to 65535');
    url.port = String(port);
  }
  const style = get('s3-uri-style') ?? 'host';
  if (style !== 'host' && style !== 'path') throw usageError(`invalid ${name('s3-uri-style')} "${style}"`, 'use host or path');
  const verifyText = get('storage-verify-tls') ?? 'y';
  const verifyTls = yesNo(verifyText);
  if (verifyTls === null) throw usageError(`invalid ${name('storage-verify-tls')} "${verifyText}"`, 'use y or n');
  const caFile = get('storage-ca-file');
  if (caFile !== undefined && !isAbsolute(caFile)) throw usageError(`${name('storage-ca-file')} "${caFile}" is relative`, 'give an absolute path');
  const key = get('s3-key');
  const secret = get('s3-key-secret');
  if ((key === undefined) !== (secret === undefined)) {
    throw usageError(`repository ${index}: ${key === undefined ? name('s3-key') : name('s3-key-secret')} is missing`, `set both ${name('s3-key')} and ${name('s3-key-secret')}, or neither (then the AWS environment variables, shared credentials file or instance role are used)`);
  }
  const path = get('path') ?? '/';
  if (!path.startsWith('/')) throw usageError(`invalid ${name('path')} "${path}" for an s3 repository`, 'give the key prefix in the bucket starting with /, such as /pgpitr (or / for the whole bucket)');
  const prefix = path.split('/').filter((p) => p !== '').join('/');
  if (prefix.split('/').some((p) => p === '.' || p === '..')) throw usageError(`invalid ${name('path')} "${path}"`, 'a key prefix with no . or .. parts');
  const token = get('s3-token');
  if (token !== undefined && key === undefined) {
    throw usageError(`repository ${index}: ${name('s3-token')} is set without ${name('s3-key')}`, `a session token goes with the temporary key it belongs to: set ${name('s3-key')} and ${name('s3-key-secret')} too, or leave all three to the AWS environment variables`);
  }
  const storageHost = get('storage-host');
  return {
    label: `repo${index}`,
    endpoint: url.origin,
    bucket,
    region,
    prefix,
    uriStyle: style,
    verifyTls,
    ...(caFile === undefined ? {} : { caFile }),
    ...(storageHost === undefined ? {} : { storageHost }),
    ...(key === undefined ? {} : { credentials: { accessKeyId: key, secretAccessKey: secret!, ...(token === undefined ? {} : { sessionToken: token }) } }),
  };
}

function cipherSettings(index: number, type: string, pass: string | undefined): CipherSettings {
  if (type === 'none') {
    if (pass !== undefined) throw usageError(`repo${index}-cipher-pass is set but repo${index}-cipher-type is none`, `set repo${index}-cipher-type=aes-256-gcm, or remove the passphrase`);
    return { type: 'none' };
  }
  if (type !== 'aes-256-gcm') throw usageError(`invalid repo${index}-cipher-type "${type}"`, 'use none or aes-256-gcm');
  if (pass === undefined || pass === '') throw usageError(`repo${index}-cipher-type is ${type} but repo${index}-cipher-pass is not set`, `put the passphrase in the configuration file or in ${envName(index, 'cipher-pass')}`);
  return { type, pass };
}

function yesNo(text: string): boolean | null {
  const t = text.toLowerCase();
  if (['y', 'yes', 'on', 'true', '1'].includes(t)) return true;
  if (['n', 'no', 'off', 'false', '0'].includes(t)) return false;
  return null;
}

/** A description of a repository with no secret in it: for messages, spool locks and `info`. */
export function describeRepository(r: RepoSettings): string {
  if (r.type === 'posix') return r.path;
  const s = r.s3!;
  return `s3://${s.bucket}${r.path === '/' ? '' : r.path} at ${s.endpoint}`;
}

/**
 * The repositories a command that works on one picks: --repo N, else the lowest N (as pgBackRest).
 * `selected` is N from --repo N.
 */
export function pickRepository(repos: RepoSettings[], selected: number | undefined): RepoSettings {
  if (repos.length === 0) throw usageError('no repository given', 'use --repo PATH, PGPITR_REPO, repo= or repoN-path in the configuration file');
  if (selected === undefined) return repos[0]!;
  const r = repos.find((x) => x.index === selected);
  if (!r) throw usageError(`--repo ${selected}: no repository ${selected} is configured`, `configured: ${repos.map((x) => x.index).join(', ')}`);
  return r;
}
