// The direct read method's listing: walks the data directory of a server on
// this host and its tablespaces the way BASE_BACKUP does (the same exclusions,
// the same unlogged-relation rule, the same tar names), so that a parallel
// backup holds what pg_basebackup's would.

import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { ListedFile, ListedTablespace } from './listing.js';
import { excludedEntry, isChecksummedFile, isDatabaseDirectory, unloggedToSkip, walEmptySubdirectories } from '../../postgres/base-backup-exclusions.js';
import type { ExclusionOptions } from '../../postgres/base-backup-exclusions.js';
import { blockNumberBase } from '../../postgres/page-checksum.js';
import { sourceError, PgpitrError } from '../../common/errors.js';

export interface WalkOptions {
  serverVersionNum: number;
  /** stats_temp_directory when it is set inside the data directory (13, 14). */
  statsTempDir?: string | undefined;
  verifyChecksums: boolean;
}

export function listDataDirectory(dataDir: string, o: WalkOptions): ListedTablespace[] {
  const tablespaces: ListedTablespace[] = [];
  const base: ListedTablespace = { oid: null, location: null, entries: [], bytes: 0 };
  const rules: ExclusionOptions = { dataDirectory: dataDir, ...(o.statsTempDir !== undefined ? { statsTempDirectory: o.statsTempDir } : {}) };
  walk(dataDir, '', rootAt(dataDir, ''), base, o, rules, tablespacesInside(dataDir));
  // Tablespaces: the links in pg_tblspc. An in-place tablespace (a directory there) is part of the base.
  for (const e of base.entries) {
    const m = /^pg_tblspc\/(\d+)$/.exec(e.name);
    if (!m || e.kind !== 'link') continue;
    const oid = Number(m[1]);
    const ts: ListedTablespace = { oid, location: e.target, entries: [], bytes: 0 };
    const versionDir = tablespaceVersionDirectory(e.target, o.serverVersionNum);
    if (versionDir !== null) walk(join(e.target, versionDir), versionDir, rootAt(e.target, `pg_tblspc/${oid}/`), ts, o, { ...rules, tablespaceVersionDirectory: versionDir });
    tablespaces.push(ts);
  }
  return [...tablespaces, base];
}

/**
 * The tablespaces located inside the data directory (PostgreSQL only warns when one is made
 * there), relative to it: BASE_BACKUP sends such a directory empty, its contents going with the
 * tablespace (basebackup.c sendDir, ti->rpath; the link's text against the data directory's).
 */
function tablespacesInside(dataDir: string): Set<string> {
  const inside = new Set<string>();
  for (const name of readNames(join(dataDir, 'pg_tblspc'))) {
    let to: string;
    try {
      to = readlinkSync(join(dataDir, 'pg_tblspc', name));
    } catch {
      continue; // not a link (an in-place tablespace), or gone
    }
    if (to.startsWith(`${dataDir}/`)) inside.add(to.slice(dataDir.length + 1));
  }
  return inside;
}

/** PG_<major>_<catalog version>: the one directory of a tablespace this server uses (others belong to other versions). */
function tablespaceVersionDirectory(location: string, serverVersionNum: number): string | null {
  const prefix = `PG_${Math.floor(serverVersionNum / 10000)}_`;
  const found = readNames(location).filter((n) => n.startsWith(prefix) && /^PG_\d+_\d+$/.test(n));
  if (found.length > 1) throw new PgpitrError('ERR_TARGET', `tablespace directory "${location}" holds more than one ${prefix}* directory: ${found.join(', ')}`);
  return found[0] ?? null;
}

/**
 * One directory: `rel` is its tar name ('' for the root of the tar file), `root` where the tar
 * names start from and what its manifest paths start with (pg_tblspc/<oid>/ for a tablespace).
 */
function walk(dir: string, rel: string, root: WalkRoot, out: ListedTablespace, o: WalkOptions, rules: ExclusionOptions, noDescent: ReadonlySet<string> = new Set()): void {
  const manifestPrefix = root.manifestPrefix;
  if (rel !== '') {
    const st = stat(dir);
    out.entries.push({ kind: 'directory', name: rel, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) });
  }
  const names = readNames(dir).sort();
  const skipUnlogged = isDatabaseDirectory(manifestPrefix + rel) ? unloggedToSkip(names, o.serverVersionNum) : null;
  for (const name of names) {
    if (skipUnlogged?.has(name)) continue;
    const path = join(dir, name);
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const manifestPath = manifestPrefix + childRel;
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed since it was listed
      throw sourceError('stat', path, e);
    }
    const kind = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : null;
    if (kind === null) continue; // sockets, fifos: the server skips them too
    const verdict = excludedEntry(manifestPath, kind, o.serverVersionNum, rules);
    if (verdict === 'skip') continue;
    const mtime = Math.floor(st.mtimeMs / 1000);
    if (verdict === 'empty-directory') {
      // Sent without its contents; a link to a directory (pg_wal with initdb -X) as the directory.
      const mode = (kind === 'link' ? stat(path) : st).mode & 0o7777;
      out.entries.push({ kind: 'directory', name: childRel, mode, mtime });
      if (manifestPath === 'pg_wal') for (const sub of walEmptySubdirectories(o.serverVersionNum)) out.entries.push({ kind: 'directory', name: sub, mode, mtime });
    } else if (kind === 'directory' && noDescent.has(childRel)) {
      out.entries.push({ kind: 'directory', name: childRel, mode: st.mode & 0o7777, mtime }); // a tablespace's location: sent with it
    } else if (kind === 'directory') {
      walk(path, childRel, root, out, o, rules, noDescent);
    } else if (kind === 'link') {
      out.entries.push({ kind: 'link', name: childRel, target: readLink(path), mtime });
    } else {
      out.entries.push(new LocalFile(root, childRel, st, checksummed(manifestPath, o)));
      out.bytes += st.size;
    }
  }
}

function rootAt(dir: string, manifestPrefix: string): WalkRoot {
  return { dir: dir.length > 1 ? dir.replace(/\/+$/, '') : dir, manifestPrefix };
}

function checksummed(manifestPath: string, o: WalkOptions): boolean {
  return o.verifyChecksums && isChecksummedFile(manifestPath, o.serverVersionNum);
}

/** Where a tablespace's files are: shared by its listed files, whose other names are made from it when asked for. */
interface WalkRoot {
  /** The data directory, or the tablespace's PG_<major>_<catalog> directory's parent (its location). */
  dir: string;
  /** What manifest paths start with: '' or pg_tblspc/<oid>/. */
  manifestPrefix: string;
}

/**
 * A file of this host's data directory or tablespaces, as listed. At 100,000 files the
 * listing held four strings and a boxed number per file (313 bytes each, 29 MB): its paths
 * are made from its name when asked for, its time kept as seconds and microseconds.
 */
class LocalFile implements ListedFile {
  size: number;
  mode: number;
  mtime: number;
  blockBase: number | null;
  private usec: number;

  constructor(private readonly root: WalkRoot, readonly name: string, st: Stats, checked: boolean) {
    this.size = st.size;
    this.mode = st.mode & 0o7777;
    const t = timesOf(st);
    this.mtime = t.mtime;
    this.usec = t.mtimeUs - t.mtime * 1_000_000;
    this.blockBase = checked ? blockNumberBase(name.slice(name.lastIndexOf('/') + 1)) : null;
  }

  get kind(): 'file' {
    return 'file';
  }

  get local(): true {
    return true;
  }

  get manifestPath(): string {
    return this.root.manifestPrefix + this.name;
  }

  get source(): string {
    return `${this.root.dir}/${this.name}`;
  }

  /** The server walks "." for the data directory and each tablespace by its location (basebackup.c). */
  get serverName(): string {
    return this.root.manifestPrefix === '' ? `./${this.name}` : this.source;
  }

  get mtimeUs(): number {
    return this.mtime * 1_000_000 + this.usec;
  }

  /** Set after mtime (restat). */
  set mtimeUs(us: number) {
    this.usec = us - this.mtime * 1_000_000;
  }
}

/** A listed file's modification time: whole seconds (the manifest's), and microseconds (what --resume compares). */
function timesOf(st: Stats): Pick<ListedFile, 'mtime' | 'mtimeUs'> {
  return { mtime: Math.floor(st.mtimeMs / 1000), mtimeUs: Math.round(st.mtimeMs * 1000) };
}

/**
 * A listed file's size and time as they are now, when its copy begins: the server looks at a file
 * just before it sends it (basebackup.c), and its rule (a file that grew is cut, one that shrank
 * padded with zeros) then spans microseconds. Listed long before (a -j backup lists everything
 * first), a file WAL does not cover that was rewritten meanwhile (postgresql.auto.conf by ALTER
 * SYSTEM) would be copied cut short or padded with zeros. A file gone stays as listed (its
 * reader finds it gone); false then, true otherwise (and for a file not of this host).
 */
export function restat(f: ListedFile): boolean {
  if (!f.local) return true;
  let st: Stats;
  try {
    st = lstatSync(f.source);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  if (!st.isFile()) return true;
  const t = timesOf(st);
  f.size = st.size;
  f.mtime = t.mtime;
  f.mtimeUs = t.mtimeUs; // after mtime: a LocalFile keeps it as the microseconds past mtime
  return true;
}

function readNames(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw sourceError('read directory', dir, e);
  }
  // Node reads names as UTF-8, a byte of another encoding as U+FFFD: such a file could not be opened
  // by that name, and was passed over as removed since it was listed (black-box run X).
  const bad = names.find((n) => n.includes('\uFFFD'));
  if (bad !== undefined) {
    throw new PgpitrError('ERR_CHECK', `${join(dir, bad)}: a file name that is not valid UTF-8 (the bytes shown as \uFFFD); the direct read method cannot copy it`, {
      hint: 'rename it in UTF-8 (or remove it if it is not the cluster\'s), then take the backup again',
    });
  }
  return names;
}

/** stat(2): through a link, as the server's sendDir does for pg_wal and the directories it walks. */
function stat(path: string): Stats {
  try {
    return statSync(path);
  } catch (e) {
    throw sourceError('stat', path, e);
  }
}

function readLink(path: string): string {
  try {
    return readlinkSync(path);
  } catch (e) {
    throw sourceError('read link', path, e);
  }
}
