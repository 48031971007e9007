// The sql read method's listing: what BASE_BACKUP would send, listed through
// the server's file functions once the backup has started, in one query per
// tablespace (a recursive walk over pg_ls_dir with pg_stat_file), then judged
// by the same rules as the direct method's walk (base-backup-exclusions.ts):
// the same exclusions, unlogged relations, tablespaces and their
// PG_<major>_<catversion> directory, checksummed files. Every name the server
// gives is checked as a relative path before it is used.
//
// What SQL cannot tell: file modes (pg_stat_file has none; the data directory's
// mode, data_directory_mode, is used, as the server creates files with it) and
// symbolic links (pg_stat_file follows them: the links of pg_tblspc are known
// from pg_tablespace; any other link in the data directory, which BASE_BACKUP
// skips, is read as what it points to).

import type { Session } from '../../protocol/session.js';
import { quoteLiteral } from '../../protocol/session.js';
import type { ListedEntry, ListedFile, ListedTablespace } from './listing.js';
import type { SqlClient } from '../../protocol/sql-client.js';
import { EXCLUDED_DIRECTORY_CONTENTS, TEMP_FILE_PREFIX, excludedEntry, isChecksummedFile, isDatabaseDirectory, unloggedToSkip, walEmptySubdirectories } from '../../postgres/base-backup-exclusions.js';
import type { ExclusionOptions } from '../../postgres/base-backup-exclusions.js';
import { blockNumberBase } from '../../postgres/page-checksum.js';
import { relativePathProblem } from '../../common/relative-path.js';
import { createModesFor } from '../../postgres/data-dir-mode.js';
import { PgpitrError } from '../../common/errors.js';

export interface SqlListingOptions {
  serverVersionNum: number;
  /** How the server's paths begin: its data_directory, or '.' (paths relative to it) when this role may not see it. */
  root: string;
  statsTempDir?: string | undefined;
  verifyChecksums: boolean;
}

interface Row {
  rel: string;
  isDir: boolean;
  size: number;
  mtime: number;
}

export async function listDataDirectoryBySql(session: Session, o: SqlListingOptions): Promise<ListedTablespace[]> {
  const modeText = await single(session, "SELECT current_setting('data_directory_mode')");
  // Only PostgreSQL's two layouts (0700/0600, or 0750/0640 with group access), whatever a server says.
  const { dir: dirMode, file: fileMode } = createModesFor(modeText);
  const spaces = await session.query(
    "SELECT oid::text, pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid",
  );
  // Tablespaces with a location elsewhere are links in pg_tblspc; an in-place one (15+, a developer option) is a directory of the base.
  const links = new Map<string, string>();
  for (const [oid, location] of spaces[0]?.rows ?? []) if (oid && location && !location.startsWith('pg_tblspc/')) links.set(`pg_tblspc/${oid}`, location);
  const rules: ExclusionOptions = { dataDirectory: o.root, ...(o.statsTempDir !== undefined ? { statsTempDirectory: o.statsTempDir } : {}) };

  const base: ListedTablespace = { oid: null, location: null, entries: [], bytes: 0 };
  // A tablespace located inside the data directory is sent empty there, with the tablespace (pgdata-walk.ts tablespacesInside).
  const inside = o.root === '.' ? [] : [...links.values()].filter((l) => l.startsWith(`${o.root}/`)).map((l) => l.slice(o.root.length + 1));
  const noDescent = ['pg_wal', ...links.keys(), ...inside, ...(o.statsTempDir !== undefined && !o.statsTempDir.startsWith('/') ? [o.statsTempDir.replace(/^\.\//, '')] : [])];
  const rows = await walk(session, o.root, noDescent);
  build(rows, '', '', base, o, rules, dirMode, fileMode, links);

  const tablespaces: ListedTablespace[] = [];
  for (const [rel, location] of links) {
    const oid = Number(rel.slice('pg_tblspc/'.length));
    const ts: ListedTablespace = { oid, location, entries: [], bytes: 0 };
    const tsRoot = `${o.root}/${rel}`;
    const prefix = `PG_${Math.floor(o.serverVersionNum / 10000)}_`;
    const names = (await session.query(`SELECT pg_ls_dir(${quoteLiteral(tsRoot)}, true, false)`))[0]?.rows.map((r) => r[0] ?? '') ?? [];
    const found = names.filter((n) => /^PG_\d+_\d+$/.test(n) && n.startsWith(prefix));
    if (found.length > 1) throw new PgpitrError('ERR_TARGET', `tablespace directory "${location}" holds more than one ${prefix}* directory: ${found.join(', ')}`);
    const versionDir = found[0];
    if (versionDir !== undefined) {
      const top = await walk(session, `${tsRoot}/${versionDir}`, []);
      const mtime = (await single(session, `SELECT floor(extract(epoch FROM (pg_stat_file(${quoteLiteral(`${tsRoot}/${versionDir}`)}, true)).modification))::bigint`)) ?? '0';
      ts.entries.push({ kind: 'directory', name: versionDir, mode: dirMode, mtime: Number(mtime) });
      build(top, versionDir, `pg_tblspc/${oid}/`, ts, o, { ...rules, tablespaceVersionDirectory: versionDir }, dirMode, fileMode, new Map());
    }
    tablespaces.push(ts);
  }
  return [...tablespaces, base];
}

/**
 * Every file and directory under `root`, recursively, in one query; not into
 * the directories sent empty or skipped by name, nor into `noDescent` (paths
 * relative to root). A name that vanished between pg_ls_dir and pg_stat_file is left out.
 */
async function walk(session: Session, root: string, noDescent: string[]): Promise<Row[]> {
  const lit = quoteLiteral(root);
  const names = `ARRAY[${EXCLUDED_DIRECTORY_CONTENTS.map(quoteLiteral).join(', ')}]::text[]`;
  const paths = `ARRAY[${noDescent.map(quoteLiteral).join(', ')}]::text[]`;
  const sql = `WITH RECURSIVE walk(rel, name, isdir, size, mtime) AS (
      SELECT d.name, d.name, s.isdir, s.size, s.modification
        FROM pg_ls_dir(${lit}, true, false) AS d(name), LATERAL pg_stat_file(${lit} || '/' || d.name, true) AS s
    UNION ALL
      SELECT w.rel || '/' || d.name, d.name, s.isdir, s.size, s.modification
        FROM walk w, LATERAL pg_ls_dir(${lit} || '/' || w.rel, true, false) AS d(name),
             LATERAL pg_stat_file(${lit} || '/' || w.rel || '/' || d.name, true) AS s
       WHERE w.isdir AND NOT w.name = ANY (${names}) AND NOT w.rel = ANY (${paths}) AND left(w.name, ${TEMP_FILE_PREFIX.length}) <> ${quoteLiteral(TEMP_FILE_PREFIX)}
  )
  SELECT rel, isdir::text, size::text, floor(extract(epoch FROM mtime))::bigint::text FROM walk WHERE isdir IS NOT NULL`;
  const r = await session.query(sql);
  const rows: Row[] = [];
  for (const [rel, isDir, size, mtime] of r[0]?.rows ?? []) {
    const problem = relativePathProblem(rel ?? '');
    if (problem !== null) throw new PgpitrError('ERR_UNSAFE_PATH', `the server listed "${rel}" under "${root}": ${problem}`, { hint: 'the data directory holds a name pgpitr will not copy; use --read-method=direct on the database host, or leave out -j' });
    rows.push({ rel: rel!, isDir: isDir === 'true', size: Number(size), mtime: Number(mtime) });
  }
  return rows;
}

/** The rows of one walk as listed entries, in the direct walk's order: a directory before its contents, names sorted. */
function build(rows: Row[], relPrefix: string, manifestPrefix: string, out: ListedTablespace, o: SqlListingOptions, rules: ExclusionOptions, dirMode: number, fileMode: number, links: Map<string, string>): void {
  const key = (r: Row) => r.rel.replaceAll('/', '\0');
  rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const byParent = new Map<string, string[]>();
  for (const r of rows) {
    const slash = r.rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : r.rel.slice(0, slash);
    let list = byParent.get(parent);
    if (!list) byParent.set(parent, (list = []));
    list.push(r.rel.slice(slash + 1));
  }
  const unlogged = new Map<string, Set<string>>();
  let skippedUnder: string | null = null;
  for (const r of rows) {
    if (skippedUnder !== null && r.rel.startsWith(skippedUnder)) continue;
    skippedUnder = null;
    const slash = r.rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : r.rel.slice(0, slash);
    const name = r.rel.slice(slash + 1);
    const tarName = relPrefix === '' ? r.rel : `${relPrefix}/${r.rel}`;
    const manifestPath = manifestPrefix + tarName;
    const manifestParent = manifestPrefix + (relPrefix === '' ? parent : parent === '' ? relPrefix : `${relPrefix}/${parent}`);
    if (isDatabaseDirectory(manifestParent)) {
      let skip = unlogged.get(parent);
      if (!skip) unlogged.set(parent, (skip = unloggedToSkip(byParent.get(parent) ?? [], o.serverVersionNum)));
      if (skip.has(name)) continue;
    }
    const target = links.get(r.rel);
    const kind = target !== undefined ? 'link' : r.isDir ? 'directory' : 'file';
    const verdict = excludedEntry(manifestPath, kind, o.serverVersionNum, rules);
    if (verdict !== 'include' || kind === 'link') skippedUnder = `${r.rel}/`;
    if (verdict === 'skip') continue;
    if (verdict === 'empty-directory') {
      out.entries.push({ kind: 'directory', name: tarName, mode: dirMode, mtime: r.mtime });
      if (manifestPath === 'pg_wal') for (const sub of walEmptySubdirectories(o.serverVersionNum)) out.entries.push({ kind: 'directory', name: sub, mode: dirMode, mtime: r.mtime });
    } else if (kind === 'link') {
      out.entries.push({ kind: 'link', name: tarName, target: target!, mtime: r.mtime });
    } else if (kind === 'directory') {
      out.entries.push({ kind: 'directory', name: tarName, mode: dirMode, mtime: r.mtime });
    } else {
      const checked = o.verifyChecksums && isChecksummedFile(manifestPath, o.serverVersionNum);
      // Named in checksum warnings as the server names it: ./base/... in the data directory, a path for tablespaces.
      const serverName = manifestPath.startsWith('pg_tblspc/') ? `${o.root}/${manifestPath}` : `./${manifestPath}`;
      const entry: ListedEntry = { kind: 'file', name: tarName, manifestPath, source: `${o.root}/${manifestPath}`, serverName, size: r.size, mode: fileMode, mtime: r.mtime, mtimeUs: r.mtime * 1_000_000, blockBase: checked ? blockNumberBase(name) : null };
      out.entries.push(entry);
      out.bytes += r.size;
    }
  }
}

/**
 * The sql read method's restat (pgdata-walk.ts): the sizes and times of `files` as the server sees
 * them now (pg_stat_file), asked right before they are copied. Listed long before (a -j backup
 * lists everything first), a file WAL does not cover that was rewritten meanwhile
 * (postgresql.auto.conf by ALTER SYSTEM) would be read cut to its listed size or padded with
 * zeros. A file gone (or no longer a file) keeps what was listed: its reader finds it so.
 */
export async function restatOnServer(sql: SqlClient, files: ListedFile[]): Promise<void> {
  if (files.length === 0) return;
  const r = await sql.query<{ size: string | null; mtime: string | null; isdir: boolean | null }>(
    `SELECT s.size::text AS size, floor(extract(epoch FROM s.modification))::bigint::text AS mtime, s.isdir
       FROM unnest($1::text[]) WITH ORDINALITY AS f(path, n) LEFT JOIN LATERAL pg_stat_file(f.path, true) AS s ON true
      ORDER BY f.n`,
    [files.map((f) => f.source)],
  );
  r.rows.forEach((row, i) => {
    const f = files[i];
    if (!f || row.size === null || row.mtime === null || row.isdir !== false) return;
    f.size = Number(row.size);
    f.mtime = Number(row.mtime);
    f.mtimeUs = f.mtime * 1_000_000;
  });
}

async function single(session: Session, sql: string): Promise<string | null> {
  return (await session.query(sql))[0]?.rows[0]?.[0] ?? null;
}
