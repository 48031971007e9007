// The modes PostgreSQL gives what it creates in a data directory, from its
// data_directory_mode (common/file_perm.c): with group access (initdb -g, 0750)
// directories 0750 and files 0640, else 0700 and 0600. pg_basebackup creates its
// output with the source's modes; so do we.

export interface CreateModes {
  dir: number;
  file: number;
  /** The umask that lets those modes through and nothing more (pg_mode_mask). */
  umask: number;
}

export const OWNER_ONLY: CreateModes = { dir: 0o700, file: 0o600, umask: 0o077 };
export const GROUP_READ: CreateModes = { dir: 0o750, file: 0o640, umask: 0o027 };

/** From SHOW data_directory_mode ("0750"); anything else (or nothing) means owner only. */
export function createModesFor(dataDirectoryMode: string | null | undefined): CreateModes {
  const mode = dataDirectoryMode && /^[0-7]+$/.test(dataDirectoryMode) ? parseInt(dataDirectoryMode, 8) : 0o700;
  return (mode & GROUP_READ.dir) === GROUP_READ.dir ? GROUP_READ : OWNER_ONLY;
}
