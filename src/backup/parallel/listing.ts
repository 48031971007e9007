// What a parallel backup copies, as a read method lists it: per tablespace (the
// main data directory first here, as its own list), its directories, files and
// links with the names they take in that tablespace's tar file, and for each
// file where to read it and whether its pages carry checksums.

export interface ListedFile {
  kind: 'file';
  /** The name in its tablespace's tar file (for a tablespace: relative to its location). */
  name: string;
  /** The path in backup_manifest (tablespace files under pg_tblspc/<oid>/). */
  manifestPath: string;
  /** Where the read method reads it (a path of this host, or of the server for SQL reads). */
  source: string;
  /**
   * The name the server gives it in BASE_BACKUP's messages (its checksum warnings): "./<path>"
   * in the data directory, the full path (under its PG_<major>_<catalog> directory) in a tablespace.
   */
  serverName: string;
  size: number;
  mode: number;
  mtime: number;
  /** Modification time in microseconds: what tells a resumed backup the file has not changed since a copy. */
  mtimeUs: number;
  /** The block number of its first page when its pages are verified (segment number × blocks per segment), else null. */
  blockBase: number | null;
  /** A file of this host (the direct read method): its size is looked at again when its copy begins (pgdata-walk.ts restat). */
  local?: boolean;
}

export interface ListedDirectory {
  kind: 'directory';
  name: string;
  mode: number;
  mtime: number;
}

export interface ListedLink {
  kind: 'link';
  name: string;
  target: string;
  mtime: number;
}

export type ListedEntry = ListedFile | ListedDirectory | ListedLink;

export interface ListedTablespace {
  /** null for the main data directory. */
  oid: number | null;
  location: string | null;
  entries: ListedEntry[];
  /** The sum of its file sizes. */
  bytes: number;
}
